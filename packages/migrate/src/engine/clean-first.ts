/**
 * A rollback after the source's fence cleans the destination before it lets the source's links up again (a runc
 * copy's links come up behind its packet hold at the fence: docs/network-switchover.md), in the engine and in the
 * recovery of a move whose ferry died. Only for so long: a destination out of reach must not keep the source frozen
 * (its links are then most likely gone with it); the clean-up goes on, and the rollback waits for it at its end.
 */
export const CLEAN_FIRST_MS = 5_000;

/** Resolves when `p` settles or after `ms`, whichever comes first; never rejects (the caller awaits `p` itself later). */
export function settleWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p.then(() => undefined, () => undefined), new Promise<void>((r) => (timer = setTimeout(r, ms)))]).finally(() => clearTimeout(timer));
}
