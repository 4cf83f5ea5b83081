import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, processId } from '../journal/proc-identity';
import { standbyPageRelay, type RelayProcessConfig } from './relay-process';

/**
 * A stand-in for `ferry page-relay` (the real one needs CRIU: relay.int.test.ts): it waits for its config as the
 * real one does, then acts as the config's migrationId says, through the same files.
 */
const FAKE = `
const fs = require('fs'), path = require('path');
const config = process.argv[process.argv.indexOf('--config') + 1];
const dir = path.dirname(config);
const wait = setInterval(() => {
  if (!fs.existsSync(config)) return;
  clearInterval(wait);
  const how = JSON.parse(fs.readFileSync(config, 'utf8')).migrationId;
  if (how === 'die') process.kill(process.pid, 'SIGKILL');
  fs.appendFileSync(path.join(dir, 'events.jsonl'), JSON.stringify({ type: 'relay-ready', daemonPid: 1, localPages: 3, remotePages: 0, takeover: false }) + '\\n');
  if (how === 'killed-later') return setTimeout(() => process.kill(process.pid, 'SIGKILL'), 100);
  fs.writeFileSync(path.join(dir, 'report.json'), JSON.stringify({ ok: true, report: { pagesAnswered: 3 } }));
}, 10);
`;

let root: string;
let command: string[];
beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'ferry-relay-process-'));
  writeFileSync(join(root, 'fake-relay.js'), FAKE);
  command = [process.execPath, join(root, 'fake-relay.js')];
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

const config = (dir: string, migrationId: string): RelayProcessConfig => ({ migrationId, dir, imagesDir: '/nonexistent', restoreWorkDir: '/nonexistent' });

test('a relay standing by does nothing until it is given its config, then reports ready and its outcome', async () => {
  const dir = join(root, 'relay');
  const standby = standbyPageRelay(dir, command);
  await new Promise((r) => setTimeout(r, 300));
  expect(isAlive(processId(standby.pid)!)).toBe(true);
  expect(existsSync(join(dir, 'events.jsonl'))).toBe(false);
  const relay = standby.start(config(dir, 'fills'));
  await expect(relay.ready).resolves.toMatchObject({ type: 'relay-ready', localPages: 3 });
  await expect(relay.outcome()).resolves.toEqual({ ok: true, report: { pagesAnswered: 3 } });
});

test('a relay killed before it was ready, or before its outcome, says so instead of leaving its owner waiting', async () => {
  const early = standbyPageRelay(join(root, 'a'), command).start(config(join(root, 'a'), 'die'));
  await expect(early.ready).rejects.toThrow(/ended \(SIGKILL\) before it was ready/);
  const late = standbyPageRelay(join(root, 'b'), command).start(config(join(root, 'b'), 'killed-later'));
  await expect(late.ready).resolves.toMatchObject({ type: 'relay-ready' });
  await expect(late.outcome()).resolves.toMatchObject({ ok: false, code: 'ERR_POSTCOPY_DAEMON_LOST', message: expect.stringMatching(/ended \(SIGKILL\) without an outcome/) });
});

test("work for another directory is refused (the relay would run where its owner does not look)", () => {
  const dir = join(root, 'c');
  const standby = standbyPageRelay(dir, command);
  try {
    expect(() => standby.start(config(join(root, 'elsewhere'), 'fills'))).toThrow(/standing by in/);
  } finally {
    process.kill(standby.pid, 'SIGKILL');
  }
});
