import type { ErrorCode } from '@ferry/core';

/** Exit codes by error family, so scripts can tell "fix your input" from "the host is broken" from "retry". */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  precheck: 3,
  criu: 4,
  runtime: 5,
  transport: 6,
  agent: 7,
  rollback: 8,
  aborted: 130,
  bug: 70,
} as const;

const FAMILIES: [prefix: string, exit: number][] = [
  ['ERR_PRECHECK_BAD_INPUT', EXIT.usage],
  ['ERR_PRECHECK_', EXIT.precheck],
  ['ERR_CRIU_', EXIT.criu],
  ['ERR_FREEZER_', EXIT.criu],
  ['ERR_IMAGE_', EXIT.criu],
  ['ERR_RUNTIME_', EXIT.runtime],
  ['ERR_NETWORK_', EXIT.runtime],
  ['ERR_TRANSPORT_', EXIT.transport],
  ['ERR_AGENT_', EXIT.agent],
  ['ERR_ROLLBACK_', EXIT.rollback],
  ['ERR_MOVE_IN_DOUBT', EXIT.rollback],
  ['ERR_ABORTED', EXIT.aborted],
];

export function exitCodeFor(code: ErrorCode): number {
  return FAMILIES.find(([prefix]) => code.startsWith(prefix))?.[1] ?? EXIT.failure;
}
