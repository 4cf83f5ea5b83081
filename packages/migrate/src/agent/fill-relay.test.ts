import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, processId } from '../journal/proc-identity';
import { RELAY_REPORT, type RelayOutcome } from '../pages/relay-process';
import { endFillRelays, fillVerdict } from './fill-relay';
import { readRelayOutcome } from '../pages/relay-process';

const OK: RelayOutcome = { ok: true, report: { pagesAnswered: 10, daemonRequests: 2, remotePages: 0, pull: { pagesFetched: 0 } as never } };
const FAILED: RelayOutcome = { ok: false, code: 'ERR_POSTCOPY_DAEMON_LOST', message: 'post-copy: the lazy-pages daemon was killed by SIGKILL' };

test("the relay's report decides whether it still runs or not; without one, a running relay is still filling", () => {
  expect(fillVerdict(OK, true)).toEqual({ pages: 'complete' });
  expect(fillVerdict(OK, false)).toEqual({ pages: 'complete' });
  // A failed relay keeps running (holding the userfaultfds) until it is let go: its report says lost all the same.
  expect(fillVerdict(FAILED, true)).toEqual({ pages: 'lost', why: expect.stringMatching(/page relay failed: .*SIGKILL/) });
  expect(fillVerdict(undefined, true)).toEqual({ pages: 'pending' });
  // Gone without a word (killed): CRIU's daemon and its log decide, as in post-copy.
  expect(fillVerdict(undefined, false)).toEqual({ pages: 'unknown' });
});

test('a missing or cut-short report is no report', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-fill-'));
  try {
    expect(readRelayOutcome(dir)).toBeUndefined();
    writeFileSync(join(dir, RELAY_REPORT), '{"ok":tr');
    expect(readRelayOutcome(dir)).toBeUndefined();
    writeFileSync(join(dir, RELAY_REPORT), JSON.stringify(FAILED));
    expect(readRelayOutcome(dir)).toEqual(FAILED);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('relays are let go with SIGTERM and waited for; one already gone is no error', async () => {
  const child = spawn('sleep', ['600'], { stdio: 'ignore' });
  await new Promise((r) => child.once('spawn', r));
  const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_c, signal) => r(signal)));
  const relay = processId(child.pid!)!;
  await endFillRelays([relay]);
  await expect(exited).resolves.toBe('SIGTERM');
  expect(isAlive(relay)).toBe(false);
  await endFillRelays([relay]);
});
