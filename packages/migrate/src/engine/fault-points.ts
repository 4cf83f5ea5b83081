/**
 * Fault points for the tests of the recovery paths: FERRY_FAULT=point:action[,point:action]. The CLI reads the
 * variable once and passes the parsed list down; nothing happens unless it is set. Points are the phase names
 * (at the start of the phase) and `dump-ready` (a lazy dump holds the frozen tasks). Actions: `throw` (an error at
 * that step, the normal failure path), `exit` (the process ends without any cleanup), `kill9` (SIGKILL to itself),
 * `hang` (the step never ends), `delay` (the step starts 2 s late: a window that timing-dependent tests need to be
 * wide, such as the destination's packet hold before the commit).
 */
import { FerryError } from '@ferry/core';

export type FaultAction = 'throw' | 'exit' | 'kill9' | 'hang' | 'delay';
export interface FaultPoint {
  point: string;
  action: FaultAction;
}

const ACTIONS: readonly FaultAction[] = ['throw', 'exit', 'kill9', 'hang', 'delay'];
export const FAULT_DELAY_MS = 2_000;

/** Parses FERRY_FAULT; entries without a colon belong to other fault hooks (the e2e fault-bin) and are skipped. */
export function parseFaults(text: string | undefined): FaultPoint[] {
  const out: FaultPoint[] = [];
  for (const entry of (text ?? '').split(',').map((e) => e.trim()).filter((e) => e.includes(':'))) {
    const [point, action] = entry.split(':') as [string, string];
    if (!/^[a-z-]+$/.test(point) || !(ACTIONS as readonly string[]).includes(action)) {
      throw new FerryError('ERR_PRECHECK_BAD_INPUT', `FERRY_FAULT entry "${entry}" is not POINT:ACTION`, {
        hint: `Actions: ${ACTIONS.join(', ')}; points: phase names or dump-ready (e.g. FERRY_FAULT=checkpoint:kill9).`,
      });
    }
    out.push({ point, action: action as FaultAction });
  }
  return out;
}

/** Acts on the fault set for `point`, if any. */
export async function faultPoint(faults: readonly FaultPoint[] | undefined, point: string): Promise<void> {
  const fault = faults?.find((f) => f.point === point);
  if (!fault) return;
  switch (fault.action) {
    case 'throw':
      throw new FerryError('ERR_FAULT_INJECTED', `fault injected at ${point} (FERRY_FAULT)`, { hint: 'Unset FERRY_FAULT.' });
    case 'exit':
      // The point of this fault is an exit without cleanup, as a crash would end the process.
      process.exit(97);
      break;
    case 'kill9':
      process.kill(process.pid, 'SIGKILL');
      break;
    case 'hang':
      await new Promise<never>(() => undefined);
      break;
    case 'delay':
      await new Promise((resolve) => setTimeout(resolve, FAULT_DELAY_MS));
  }
}
