import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { watchDir } from './dir-watch';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-dir-watch-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const LONG = 4_000;
/** Resolves with `value` after ms, without keeping the test process alive. */
const after = (ms: number, value: string) => new Promise((r) => setTimeout(() => r(value), ms).unref());

it('wakes a wait when a file appears in the directory, long before its limit', async () => {
  const changes = watchDir(dir, ['config.json', 'events.jsonl']);
  try {
    const waited = changes.next(LONG).then(() => 'woken');
    setTimeout(() => writeFileSync(join(dir, 'config.json'), '{}'), 20);
    expect(await Promise.race([waited, after(LONG / 2, 'still waiting')])).toBe('woken');
  } finally {
    changes.close();
  }
});

it('a change between two waits is not lost: the next wait returns at once', async () => {
  const changes = watchDir(dir, ['config.json', 'events.jsonl']);
  try {
    writeFileSync(join(dir, 'events.jsonl'), 'x\n');
    await new Promise((r) => setTimeout(r, 100)); // the event arrives while nobody waits
    expect(await Promise.race([changes.next(LONG).then(() => 'at once'), after(LONG / 2, 'waited')])).toBe('at once');
  } finally {
    changes.close();
  }
});

it('falls back to the limit alone where the directory cannot be watched', async () => {
  const changes = watchDir(join(dir, 'no-such-dir'), ['config.json']);
  try {
    const started = Date.now();
    await changes.next(30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
  } finally {
    changes.close();
  }
});

it('other files written in the directory do not wake a wait (the relay logs every page batch it answers there)', async () => {
  const changes = watchDir(dir, ['report.json']);
  try {
    const waited = changes.next(LONG).then(() => 'woken');
    for (let i = 0; i < 5; i++) writeFileSync(join(dir, 'answered.bin'), String(i), { flag: 'a' });
    expect(await Promise.race([waited, after(300, 'still waiting')])).toBe('still waiting');
    writeFileSync(join(dir, 'report.json'), '{}');
    expect(await Promise.race([waited, after(LONG / 2, 'still waiting')])).toBe('woken');
  } finally {
    changes.close();
  }
});
