import { excerptCriuLog, isHarmlessLogLine } from './criu-log';

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
