/**
 * The freezer against real cgroups of this host (v1 freezer and the v2 hierarchy where present).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCgroupLayout } from '../host/cgroup-layout';
import { readWorkloadState, startWorkloadInPidNamespace, waitForCounter, type PidNamespaceWorkload } from '../testing/workload';
import { Freezer, freezerForPid } from './freezer';

jest.setTimeout(30_000);

const layout = parseCgroupLayout(readFileSync('/proc/self/mountinfo', 'utf8'));
const v1Root = layout.v1Controllers.freezer;
const v2Root = layout.v2Mountpoint;

let dir: string;
let workload: PidNamespaceWorkload | undefined;
const cgroups: string[] = [];
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-freezer-'))));
afterEach(async () => {
  workload?.stop();
  workload = undefined;
  await new Promise((r) => setTimeout(r, 100));
  for (const cg of cgroups.splice(0)) {
    try {
      Freezer.at(cg).thaw();
      rmdirSync(cg);
    } catch {
      /* best effort */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

async function workloadIn(root: string): Promise<{ cgroup: string; stateFile: string }> {
  const cgroup = join(root, `ferry-test-${process.pid}-${cgroups.length}`);
  mkdirSync(cgroup);
  cgroups.push(cgroup);
  const stateFile = join(dir, 'state');
  workload = await startWorkloadInPidNamespace({ stateFile, memMib: 1, tickMs: 10 });
  writeFileSync(join(cgroup, 'cgroup.procs'), String(workload.pid));
  return { cgroup, stateFile };
}

const cases = [
  ['v1', v1Root],
  ['v2', v2Root],
] as const;

describe.each(cases)('%s freezer', (kind, root) => {
  const run = root && existsSync(root) ? test : test.skip;
  if (!root) console.log(`skipping the ${kind} freezer tests: this host has no ${kind} hierarchy`);

  run('freeze stops the workload, thaw lets it continue', async () => {
    const { cgroup, stateFile } = await workloadIn(root!);
    const freezer = Freezer.at(cgroup);
    expect(freezer.kind).toBe(kind);
    await freezer.freeze();
    expect(freezer.state()).toBe('frozen');
    const frozenAt = readWorkloadState(stateFile)!.counter;
    await new Promise((r) => setTimeout(r, 200));
    expect(readWorkloadState(stateFile)!.counter).toBe(frozenAt);
    freezer.thaw();
    expect(freezer.state()).toBe('thawed');
    await waitForCounter(stateFile, frozenAt + 5);
  });

  run('freezerForPid finds the cgroup of a process', async () => {
    const { cgroup } = await workloadIn(root!);
    const mounts = kind === 'v1' ? { v1Freezer: root } : { v2: root };
    expect(freezerForPid(workload!.pid, mounts).path).toBe(cgroup);
  });
});

test('a missing cgroup is ERR_FREEZER_UNAVAILABLE', () => {
  expect(() => Freezer.at('/sys/fs/cgroup/no-such-cgroup')).toThrow(expect.objectContaining({ code: 'ERR_FREEZER_UNAVAILABLE' }));
});
