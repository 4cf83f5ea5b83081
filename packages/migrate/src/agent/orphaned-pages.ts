/**
 * A committed post-copy whose agent died before it recorded the pages' outcome (issue #13: such a move used to stay
 * in doubt, the source held until a person looked). The agent alone joined the page link (pages/destination-link.ts)
 * and the lazy-pages daemon holds a copy of ferry's end, so once the agent is gone no page can reach the daemon and
 * no word from the daemon can reach the source. The next agent on this host (`ferry agent --status ID`, which the
 * source's guardian keeps asking, or any agent start) settles it:
 *
 * - the daemon still runs: it waits for pages that cannot come, or (holding them all) for the source's answer to its
 *   close, which cannot come either: the source never heard the close, so its frozen tasks are whole. The copy is
 *   removed, then the daemon killed (the other order would let faulting tasks read zeros), and the outcome is `lost`:
 *   the source takes the container back.
 * - the daemon is gone: `complete` only when its log shows it left the request loop and disconnected without an error
 *   (CRIU logs "Disconnect from the page server" after its last page, errors as "Error (file:line)"); else `lost`.
 *
 * A lazy restore from the destination's own pages whose relay runs detached (`relay` hold, fill-relay.ts) needs
 * no agent: while the relay runs without a report the move is pending; its report says `complete` or `lost` (the
 * copy removed first, then the daemon killed and the relay let go); a relay gone without one falls to the rules above.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decidePages, readPagesOutcome, type PagesOutcome } from '../journal/decision';
import { Journal, migrationDir, readJournal, type JournalState } from '../journal/journal';
import { isAlive, killIfSame } from '../journal/proc-identity';
import { waitGone } from '../recovery/end-dump';
import { finishKept, loseCopy, type DestinationDeps } from './destination-moves';
import { endFillRelays, fillVerdict } from './fill-relay';
import { readRelayOutcome } from '../pages/relay-process';
import { MIGRATION_ID } from './incoming';
import { LOCAL_FILL_DIR, LOCAL_FILL_LOG } from './local-page-fill';

/** Where the agent starts post-copy's daemon log (commit-service.ts: workDir `work`, CRIU's default log name); a lazy restore's is LOCAL_FILL_LOG. */
export const LAZY_PAGES_LOG = join('work', 'lazy-pages.log');

/** Settles move `id` if it is such an orphan; the outcome decided (or found), undefined when it is not one. */
export async function settleOrphanedPages(id: string, deps: DestinationDeps): Promise<PagesOutcome | undefined> {
  const dir = migrationDir(deps.stateDir, id);
  const state = journalOf(id, deps.stateDir);
  if (!state || !isOrphan(state) || readPagesOutcome(deps.stateDir, id)) return undefined;
  const daemons = state.holds.get('lazy-daemon')?.pids ?? [];
  const keepers = state.holds.get('page-link')?.pids ?? [];
  // A resumable link's keeper still holds the stream: the source may reconnect, and the daemon's end (done or
  // failed) or the keeper giving up settles it at a later ask.
  if (keepers.some(isAlive)) return undefined;
  // A lazy restore's detached relay outlives the agent: its report decides, and while it runs without one it fills.
  const relays = state.holds.get('relay')?.pids ?? [];
  const relayed = fillVerdict(readRelayOutcome(join(dir, LOCAL_FILL_DIR)), relays.some(isAlive));
  if (relayed.pages === 'pending') return undefined;
  const running = daemons.some(isAlive);
  const logged = readLog(join(dir, LAZY_PAGES_LOG)) ?? readLog(join(dir, LOCAL_FILL_LOG));
  const whole = relayed.pages === 'complete' || (relayed.pages === 'unknown' && !running && logged !== undefined && lazyPagesFinished(logged));
  const journal = Journal.open(dir);
  const move = { id, dir, runtime: state.runtime, name: state.holds.get('restored')?.name ?? state.container, journal };
  if (whole) {
    const outcome = decidePages(deps.stateDir, id, 'complete');
    if (outcome !== 'complete') {
      journal.close();
      return outcome;
    }
    journal.release('lazy-daemon');
    if (relayed.pages === 'complete') journal.append({ t: 'note', message: 'pages complete: the page relay filled the copy after its agent died' });
    await endFillRelays(relays); // exiting by itself: its directory goes next
    deps.log(`post-copy of ${state.container}: its agent died after every page arrived; the copy is kept`);
    finishKept(move, deps);
    return outcome;
  }
  try {
    const why = relayed.pages === 'lost' ? relayed.why : running ? 'its agent died while the lazy-pages daemon still waited for pages' : 'its agent and the lazy-pages daemon died before the log showed every page';
    await loseCopy(move, deps, why);
  } catch (err) {
    journal.close(); // the copy could not be removed: the pages stay undecided, the source held
    throw err;
  }
  // Only now: with the copy gone, no task can fault on a page the dead daemon would have left zero.
  for (const daemon of daemons) killIfSame(daemon);
  await endFillRelays(relays);
  return 'lost';
}

/** How long an agent still watching the move has to record `lost` once its keeper is gone. */
const ABANDON_SETTLE_MS = 20_000;

/**
 * The source's recovery says its end of a resumable page link is gone for good (the guardian that held CRIU's end
 * died, which reset it): the keeper stops waiting for a reconnection, and the move is settled at once (by the agent
 * that watches it, or here when that agent is gone) instead of after the keeper's grace period.
 */
export async function abandonPageLink(id: string, deps: DestinationDeps): Promise<PagesOutcome | undefined> {
  const state = journalOf(id, deps.stateDir);
  if (!state) return undefined;
  const keepers = state.holds.get('page-link')?.pids ?? [];
  if (state.done || !state.committed || readPagesOutcome(deps.stateDir, id) || !keepers.some(isAlive)) return settleOrphanedPages(id, deps);
  deps.log(`post-copy ${id}: the source abandoned its page link; stopping the keeper`);
  for (const keeper of keepers) killIfSame(keeper);
  await waitGone(keepers);
  const deadline = Date.now() + ABANDON_SETTLE_MS;
  for (;;) {
    const settled = (await settleOrphanedPages(id, deps)) ?? readPagesOutcome(deps.stateDir, id);
    if (settled || Date.now() > deadline) return settled;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Move `id`'s journal on this host; undefined for a bad id (migrationStatus refuses it with the proper error) or none. */
function journalOf(id: string, stateDir: string): JournalState | undefined {
  if (!MIGRATION_ID.test(id)) return undefined;
  try {
    return readJournal(migrationDir(stateDir, id));
  } catch {
    return undefined;
  }
}

/** A committed post-copy, undecided pages, its agent gone. */
export function isOrphan(state: JournalState): boolean {
  return state.role === 'destination' && !state.done && state.committed && state.holds.has('lazy-daemon') && !(state.holds.get('owner')?.pids ?? []).some(isAlive);
}

/** Whether CRIU's lazy-pages log shows a daemon that took every page and closed the link without an error. */
export function lazyPagesFinished(log: string): boolean {
  return log.includes('Disconnect from the page server') && !/^\([0-9.]+\) +Error \(/m.test(log);
}

function readLog(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined; // no log: the daemon never started, or its directory is gone
  }
}
