/**
 * `ferry ps`, `ferry checkpoint` and `ferry restore --runtime docker` as a user runs them (the BUILT CLI) against a
 * dockerd of the test's own (DOCKER_HOST points at it) and a runc container beside it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TEST_IMAGE,
  dockerWorkloadArgs,
  readWorkloadState,
  runCleanups,
  startRuncContainer,
  startTestDockerd,
  verifyWorkloadMemory,
  waitFor,
  type Cleanup,
  type TestDockerd,
} from '@ferry/core/testing';
import { ferry, ferryOk, jsonOutput } from '../testing/run-ferry';

jest.setTimeout(120_000);

let daemon: TestDockerd;
let dir: string;
const cleanups: Cleanup[] = [];
const savedDockerHost = process.env.DOCKER_HOST;

beforeAll(async () => {
  daemon = await startTestDockerd(`cli${process.pid}`);
  process.env.DOCKER_HOST = daemon.dockerHost; // run-ferry passes the test's environment on
});
afterAll(async () => {
  if (savedDockerHost === undefined) delete process.env.DOCKER_HOST;
  else process.env.DOCKER_HOST = savedDockerHost;
  await daemon?.stop();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-dk-cli-'));
});
afterEach(async () => {
  await runCleanups(cleanups);
  rmSync(dir, { recursive: true, force: true });
});

function counterOf(name: string): number {
  const pid = daemon.docker(['inspect', '-f', '{{.State.Pid}}', name]).trim();
  return readWorkloadState(`/proc/${pid}/root/tmp/state`)?.counter ?? -1;
}

test('ps lists runc and Docker containers together; checkpoint and restore --runtime docker round-trip', async () => {
  const runc = await startRuncContainer({ memMib: 8, port: 0 });
  cleanups.push(() => runc.stop());
  const name = `dk-cli-${process.pid}`;
  daemon.docker(['run', '-d', '--name', name, '--network', 'none', TEST_IMAGE, ...dockerWorkloadArgs(32)]);
  cleanups.push(() => void daemon.docker(['rm', '-f', name]));
  await waitFor('the workload to count', () => counterOf(name) >= 2, 20_000, 50);

  const ps = JSON.parse((await ferryOk('ps', '--json')).stdout) as { containers: { ref: { runtime: string; id: string }; state: string }[]; problems: string[] };
  expect(ps.problems).toEqual([]);
  expect(ps.containers).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ ref: { runtime: 'runc', id: runc.name }, state: 'running' }),
      expect.objectContaining({ ref: { runtime: 'docker', id: name }, state: 'running' }),
    ]),
  );
  const table = (await ferryOk('ps')).stdout;
  expect(table).toMatch(new RegExp(`docker\\s+${name}\\s+running\\s+\\d+`));
  expect(table).toMatch(new RegExp(`runc\\s+${runc.name}\\s+running`));

  const imagesDir = join(dir, 'images');
  const checkpoint = jsonOutput(await ferryOk('checkpoint', `docker:${name}`, '--dir', imagesDir, '--json'));
  expect(checkpoint).toMatchObject({ container: { runtime: 'docker', id: name }, state: 'stopped' });
  const restored = jsonOutput(await ferryOk('restore', imagesDir, '--runtime', 'docker', '--json'));
  expect(restored).toMatchObject({ container: { ref: { runtime: 'docker', id: name }, state: 'running' } });
  const at = counterOf(name);
  await waitFor('the counter to continue', () => counterOf(name) > at + 2, 10_000, 50);
  const pid = Number(daemon.docker(['inspect', '-f', '{{.State.Pid}}', name]).trim());
  expect(await verifyWorkloadMemory(pid, `/proc/${pid}/root/tmp/state`)).toBe('ok');
});

test('doctor reports the test daemon through the adapter (its socket, its version)', async () => {
  const facts = JSON.parse((await ferry('doctor', '--json')).stdout) as { runtimes: { name: string; usable: boolean; path?: string; version?: string }[] };
  expect(facts.runtimes.find((r) => r.name === 'docker')).toMatchObject({ usable: true, path: daemon.dockerHost, version: expect.stringMatching(/^20\./) });
});

test('a tty container: a clear refusal with its own exit code, no stack trace, still running', async () => {
  const name = `dk-cli-tty-${process.pid}`;
  daemon.docker(['run', '-d', '-t', '--name', name, '--network', 'none', TEST_IMAGE, ...dockerWorkloadArgs(8)]);
  cleanups.push(() => void daemon.docker(['rm', '-f', name]));
  await waitFor('the workload to count', () => counterOf(name) >= 1, 20_000, 50);
  const run = await ferry('checkpoint', name, '--dir', join(dir, 'images'));
  expect(run.status).toBe(3);
  expect(run.stderr).toMatch(/ERR_PRECHECK_UNSUPPORTED_CONFIG/);
  expect(run.stderr).toMatch(/terminal/);
  expect(run.stderr).not.toMatch(/\n\s+at .*:\d+:\d+\)/);
  expect(daemon.docker(['inspect', '-f', '{{.State.Status}}', name]).trim()).toBe('running');
});

test('ps without a daemon: runc is listed, Docker named as the problem, exit 0', async () => {
  const saved = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `unix://${join(dir, 'no-daemon.sock')}`;
  try {
    const t0 = Date.now();
    const run = await ferry('ps', '--json');
    expect(run.status).toBe(0);
    expect(Date.now() - t0).toBeLessThan(10_000);
    const out = JSON.parse(run.stdout) as { problems: string[] };
    expect(out.problems).toEqual([expect.stringMatching(/^docker: .*no-daemon\.sock/)]);
    const facts = JSON.parse((await ferry('doctor', '--json')).stdout) as { runtimes: { name: string; usable: boolean; reason?: string }[] };
    expect(facts.runtimes.find((r) => r.name === 'docker')).toMatchObject({ usable: false, reason: expect.stringMatching(/no dockerd socket/) });
  } finally {
    process.env.DOCKER_HOST = saved;
  }
});
