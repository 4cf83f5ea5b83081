import { LAZY_PAGES_MIN_PIPE_BYTES, strategiesFor } from './strategies';

const byName = (v: ReturnType<typeof strategiesFor>) => Object.fromEntries(v.map((s) => [s.name, s]));

describe('strategiesFor', () => {
  it('this project hosts: no soft-dirty, lazy pages with a big pipe', () => {
    const v = byName(strategiesFor({ criuUsable: true, memTrack: false, lazyPages: true, pipeMaxSizeBytes: LAZY_PAGES_MIN_PIPE_BYTES, memoryRead: true }));
    expect(v['stop-and-copy']?.available).toBe(true);
    expect(v['hash-pre-copy']?.available).toBe(true);
    expect(v['hash-pre-copy']?.reason).toMatch(/without kernel memory tracking/);
    expect(v['pre-copy']?.available).toBe(false);
    expect(v['pre-copy']?.reason).toMatch(/soft-dirty/);
    expect(v['post-copy']?.available).toBe(true);
  });

  it('post-copy needs the pipe sysctl, and says which one', () => {
    const v = byName(strategiesFor({ criuUsable: true, memTrack: true, lazyPages: true, pipeMaxSizeBytes: 1048576, memoryRead: false }));
    expect(v['hash-pre-copy']?.available).toBe(false);
    expect(v['hash-pre-copy']?.reason).toMatch(/CAP_SYS_PTRACE/);
    expect(v['pre-copy']?.available).toBe(true);
    expect(v['post-copy']?.available).toBe(false);
    expect(v['post-copy']?.reason).toMatch(/fs\.pipe-max-size=4194304/);
  });

  it('nothing without a usable CRIU', () => {
    expect(strategiesFor({ criuUsable: false, memTrack: true, lazyPages: true, pipeMaxSizeBytes: 1 << 30, memoryRead: true }).every((s) => !s.available)).toBe(true);
  });
});
