import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MigrationEvent } from '@ferry/core';
import type { MigrateDeps, MigrateRequest, MigrationReport } from '../engine/migrate-deps';
import { GUARDED_FILE, controlSocketPath, readLines, writeLine, type GuardianMessage } from './guarded-move';
import { runGuardian } from './run-guardian';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-guardian-'));
  writeFileSync(join(dir, GUARDED_FILE), JSON.stringify({ request: { container: 'web' }, ssh: { acceptNewHostKey: false } }));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const REPORT = { migrationId: 'm', container: 'web' } as MigrationReport;

/** A move that emits `events`, then waits until `release` (or its abort) settles it. */
function fakeMove(events: MigrationEvent[]) {
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let aborted = false;
  const migrate = async (request: MigrateRequest): Promise<MigrationReport> => {
    for (const e of events) request.onEvent?.(e);
    await Promise.race([released, new Promise<void>((r) => request.signal?.addEventListener('abort', () => r()))]);
    if (request.signal?.aborted) {
      aborted = true;
      throw Object.assign(new Error('migration interrupted'), { code: 'ERR_ABORTED' });
    }
    return REPORT;
  };
  return { migrate, release, wasAborted: () => aborted };
}

async function attach(): Promise<{ socket: Socket; messages: GuardianMessage[] }> {
  for (;;) {
    try {
      const socket = await new Promise<Socket>((resolve, reject) => {
        const s = connect(controlSocketPath(dir), () => resolve(s));
        s.once('error', reject);
      });
      const messages: GuardianMessage[] = [];
      readLines<GuardianMessage>(socket, (m) => messages.push(m));
      return { socket, messages };
    } catch {
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

const guardian = (migrate: ReturnType<typeof fakeMove>['migrate']) =>
  runGuardian({ id: 'm1', dir, deps: () => ({}) as MigrateDeps, watchdogCommand: ['true'], log: () => undefined, migrate: migrate as never });

test('relays events and the report to the attached CLI', async () => {
  const move = fakeMove([{ type: 'phase-start', phase: 'connect' }]);
  const running = guardian(move.migrate);
  const { messages } = await attach();
  while (!messages.some((m) => 'event' in m)) await new Promise((r) => setTimeout(r, 5));
  move.release();
  expect(await running).toEqual({ ok: true });
  while (messages.length < 2) await new Promise((r) => setTimeout(r, 5));
  expect(messages).toEqual([{ event: { type: 'phase-start', phase: 'connect' } }, { report: REPORT }]);
});

test('the CLI going away before the point of no return aborts the move; an abort request does too', async () => {
  const move = fakeMove([{ type: 'phase-start', phase: 'freeze' }]);
  const running = guardian(move.migrate);
  const { socket } = await attach();
  socket.destroy();
  expect(await running).toEqual({ ok: false });
  expect(move.wasAborted()).toBe(true);

  const second = fakeMove([]);
  const again = guardian(second.migrate);
  const cli = await attach();
  writeLine(cli.socket, { abort: 'SIGINT' });
  expect(await again).toEqual({ ok: false });
  expect(second.wasAborted()).toBe(true);
  await new Promise((r) => setTimeout(r, 20));
  expect(cli.messages.at(-1)).toMatchObject({ error: { message: 'migration interrupted' } });
});

test('after the point of no return the move goes on without the CLI, and an abort request gets a notice', async () => {
  const move = fakeMove([{ type: 'committed', downtimeMs: 5 }]);
  const running = guardian(move.migrate);
  const { socket, messages } = await attach();
  while (!messages.some((m) => 'event' in m)) await new Promise((r) => setTimeout(r, 5));
  writeLine(socket, { abort: 'SIGTERM' });
  while (!messages.some((m) => 'notice' in m)) await new Promise((r) => setTimeout(r, 5));
  socket.destroy();
  await new Promise((r) => setTimeout(r, 20));
  move.release();
  expect(await running).toEqual({ ok: true });
  expect(move.wasAborted()).toBe(false);
});
