import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { excerptCriuLog, isHarmlessLogLine, LOG_TAIL_LIMIT_BYTES, readLogExcerpt } from './criu-log';

const log = [
  '(00.000000) Version: 4.2.1 (gitid 0)',
  '(00.000011) Error (criu/util.c:666): rlimit: Can\'t setup RLIMIT_NOFILE for self: Operation not permitted',
  '(00.000100) Running on vm Linux 6.18',
  '(00.010000) Opening images',
  '(00.020000) Trying to restore task 42',
  "(00.020500) Error (criu/cr-restore.c:1512): Can't fork for 42: File exists",
  '(00.030000) Error (criu/cr-restore.c:2609): Restoring FAILED.',
].join('\n');

describe('excerptCriuLog', () => {
  it('keeps real errors with context and drops the harmless RLIMIT_NOFILE line', () => {
    const excerpt = excerptCriuLog(log, { contextLines: 1 });
    expect(excerpt.errorCount).toBe(2);
    expect(excerpt.lines).toEqual([
      '(00.020000) Trying to restore task 42',
      "(00.020500) Error (criu/cr-restore.c:1512): Can't fork for 42: File exists",
      '(00.030000) Error (criu/cr-restore.c:2609): Restoring FAILED.',
    ]);
  });

  it('marks gaps between separate error sites', () => {
    const text = ['a', 'Error (x.c:1): one', 'b', 'c', 'd', 'Error (x.c:2): two'].join('\n');
    expect(excerptCriuLog(text, { contextLines: 0 }).lines).toEqual(['Error (x.c:1): one', '...', 'Error (x.c:2): two']);
  });

  it('keeps the last lines when there are too many', () => {
    const text = Array.from({ length: 100 }, (_, i) => `Error (x.c:${i}): e${i}`).join('\n');
    const excerpt = excerptCriuLog(text, { contextLines: 0, maxLines: 5 });
    expect(excerpt.lines).toEqual(['...', 'Error (x.c:95): e95', 'Error (x.c:96): e96', 'Error (x.c:97): e97', 'Error (x.c:98): e98', 'Error (x.c:99): e99']);
    expect(excerpt.errorCount).toBe(100);
  });

  it('knows the harmless line', () => {
    expect(isHarmlessLogLine("Error (criu/util.c:1): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted")).toBe(true);
    expect(isHarmlessLogLine('Error (criu/mem.c:1): cannot dump')).toBe(false);
  });
});

describe('readLogExcerpt', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-criu-log-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('reads a huge log from its tail: a spinning restore writes gigabytes, the end says why', () => {
    const path = join(dir, 'restore.log');
    const filler = `${'(00.1) pie: 1: restoring page 0x7f0000000000 of 65536\n'.repeat(200_000)}`;
    writeFileSync(path, `(00.0) Error (criu/early.c:1): an early error far from the end\n${filler}(99.9) Error (criu/cr-restore.c:2609): Restoring FAILED.\n`);
    expect(statSync(path).size).toBeGreaterThan(LOG_TAIL_LIMIT_BYTES);
    const excerpt = readLogExcerpt(path)!;
    expect(excerpt.lines.join('\n')).toContain('Restoring FAILED.');
    expect(excerpt.lines.join('\n')).not.toContain('an early error');
  });

  it('is undefined for a log that is not there', () => {
    expect(readLogExcerpt(join(dir, 'none.log'))).toBeUndefined();
  });
});
