/**
 * ferry replicate / replicas / failover between the sandbox hosts.
 */
import { join } from 'node:path';
import { waitFor } from '@ferry/core/testing';
import { HOSTS_FILE, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';

jest.setTimeout(180_000);

interface State {
  exists: boolean;
  state?: string;
  workload?: { counter: number };
}

const name = `repl-${process.pid}`;

beforeAll(() => {
  sandbox('up');
  ctl('h1', 'start', name, '--mem-mib', '32', '--dirty-pages-per-sec', '500', '--address', '10.77.0.160/24');
});
afterAll(() => {
  for (const host of ['h1', 'h2'] as const) onHost(host, ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove', name]);
  onHost('h1', ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove-bundle', name]);
  onHost('h2', ['rm', '-rf', `/var/lib/ferry/replicas/${name}`]);
  onHost('h1', ['rm', '-f', `/var/lib/ferry/replication/${name}.json`]);
  sandbox('down');
});

const state = (host: 'h1' | 'h2', n: string) => ctl<State>(host, 'state', n);
const jsonLines = (text: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('rounds keep a copy on the standby; failover starts it when the primary is gone', async () => {
  const run = await ferryOn('h1', ['replicate', name, '--to', 'h2', '--every', '1s', '--rounds', '2', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  const rounds = jsonLines(run.stdout).filter((e) => e.event === 'round');
  expect(rounds).toHaveLength(2);
  expect((rounds[1]!.round as { kind: string }).kind).toBe('full');
  expect(state('h1', name)).toMatchObject({ exists: true, state: 'running' });

  const primary = JSON.parse((await ferryOn('h1', ['replicas'])).stdout) as { jobs: { container: string; rounds: number; lastGood?: { takenAt: string } }[] };
  expect(primary.jobs.find((j) => j.container === name)).toMatchObject({ rounds: 2 });
  const standby = JSON.parse((await ferryOn('h2', ['replicas'])).stdout) as { replicas: { meta: { container: string; sourceHost: string } }[] };
  expect(standby.replicas.map((r) => r.meta.container)).toContain(name);
  // The previous round's copy is gone once the newer one is complete: one round directory and `current`.
  const dirs = onHost('h2', ['ls', `/var/lib/ferry/replicas/${name}`]).stdout.split('\n').filter(Boolean);
  expect(dirs.filter((d) => /^\d{6}-/.test(d))).toHaveLength(1);

  // The primary dies; the standby takes over from the last copy.
  const lastCounter = state('h1', name).workload!.counter;
  onHost('h1', ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove', name]);
  const failover = await ferryOn('h2', ['failover', name]);
  expect(failover.error).toBeUndefined();
  expect(failover.status).toBe(0);
  expect(state('h2', name)).toMatchObject({ exists: true, state: 'running' });
  const resumedAt = state('h2', name).workload!.counter;
  expect(resumedAt).toBeLessThanOrEqual(lastCounter + 100);
  await waitFor('the counter to continue on the standby', () => (state('h2', name).workload?.counter ?? 0) > resumedAt + 3, 10_000, 100);
  expect(ctl('h2', 'verify', name)).toEqual({ verdict: 'ok' });

  // A second failover finds the name taken.
  const again = await ferryOn('h2', ['failover', name]);
  expect(again.error?.code).toBe('ERR_RUNTIME_NAME_TAKEN');
});

test('failover without a replica says so', async () => {
  const run = await ferryOn('h2', ['failover', 'never-replicated']);
  expect(run.error?.code).toBe('ERR_IMAGE_NOT_FOUND');
  expect(run.error?.hint).toMatch(/ferry replicas/);
});
