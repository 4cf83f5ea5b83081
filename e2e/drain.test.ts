/**
 * ferry drain between the sandbox hosts: every running container leaves h1 (bounded concurrency, plan first),
 * a failure of one does not stop the others, and --return brings them back.
 */
import { join } from 'node:path';
import { startNetnsTcpClient, waitFor, type NetnsTcpClient } from '@ferry/core/testing';
import { HOSTS_FILE, LAN_NETNS, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';

jest.setTimeout(240_000);

interface State {
  exists: boolean;
  state?: string;
  workload?: { counter: number };
}

/** Resolves (an address), but no sshd answers there: moves to it fail at connect, before anything is frozen. */
const UNREACHABLE = '127.0.0.1:1';
const names = [`drain-${process.pid}-a`, `drain-${process.pid}-b`, `drain-${process.pid}-c`];
const clients: NetnsTcpClient[] = [];

beforeAll(() => {
  sandbox('up');
  names.forEach((name, i) => ctl('h1', 'start', name, '--mem-mib', '32', '--dirty-pages-per-sec', '500', '--address', `10.77.0.${100 + i}/24`));
});
afterAll(() => {
  for (const c of clients) c.stop();
  for (const host of ['h1', 'h2'] as const) for (const name of names) onHost(host, ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove', name]);
  for (const name of names) onHost('h1', ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove-bundle', name]);
  onHost('h1', ['rm', '-f', '/var/lib/ferry/drain.json']);
  sandbox('down');
});

const state = (host: 'h1' | 'h2', name: string) => ctl<State>(host, 'state', name);
const lines = (stdout: string) =>
  stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

test('--dry-run shows the plan and moves nothing', async () => {
  const run = await ferryOn('h1', ['drain', '--to', 'h2', '--dry-run', '--hosts-file', HOSTS_FILE]);
  expect(run.status).toBe(0);
  const plan = lines(run.stdout).find((e) => e.event === 'plan') as { moves: { container: string; destination: string }[] };
  expect(plan.moves.filter((m) => names.includes(m.container)).map((m) => m.destination)).toEqual(['h2', 'h2', 'h2']);
  for (const name of names) expect(state('h1', name)).toMatchObject({ exists: true, state: 'running' });
});

test('a destination that does not resolve is refused before anything moves, even with --dry-run', async () => {
  for (const extra of [['--dry-run'], []]) {
    const run = await ferryOn('h1', ['drain', '--to', 'h2,no-such-host.invalid', ...extra, '--hosts-file', HOSTS_FILE]);
    expect(run.status).toBe(6);
    expect(run.error?.code).toBe('ERR_TRANSPORT_UNKNOWN_HOST');
  }
  for (const name of names) expect(state('h1', name)).toMatchObject({ exists: true, state: 'running' });
});

test('a destination that fails does not stop the others; the failed ones keep running at home', async () => {
  // Round-robin over [h2, a host nobody answers on]: a and c go to h2, b fails and stays.
  const run = await ferryOn('h1', ['drain', '--to', `h2,${UNREACHABLE}`, '--as', 'h1', '--concurrency', '2', '--hosts-file', HOSTS_FILE]);
  expect(run.status).toBe(1);
  expect(run.error?.code).toBe('ERR_DRAIN_INCOMPLETE');
  expect(run.error?.message).toContain(names[1]);
  expect(state('h2', names[0]!)).toMatchObject({ exists: true, state: 'running' });
  expect(state('h2', names[2]!)).toMatchObject({ exists: true, state: 'running' });
  expect(state('h1', names[1]!)).toMatchObject({ exists: true, state: 'running' });
  expect(state('h1', names[0]!).exists).toBe(false);
});

test('a later drain that fails entirely does not hide what the first one moved', async () => {
  const run = await ferryOn('h1', ['drain', '--to', UNREACHABLE, '--as', 'h1', '--hosts-file', HOSTS_FILE]);
  expect(run.error?.code).toBe('ERR_DRAIN_INCOMPLETE');
  expect(state('h1', names[1]!)).toMatchObject({ exists: true, state: 'running' });
});

test('--return brings back what moved, with its state, and an outside TCP connection survives both ways', async () => {
  const client = startNetnsTcpClient(LAN_NETNS, '10.77.0.100', 8080);
  clients.push(client);
  await client.waitFor(/tick \d+/);
  const before = state('h2', names[0]!).workload!.counter;
  const run = await ferryOn('h1', ['drain', '--return', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  for (const name of [names[0]!, names[2]!]) {
    expect(state('h1', name)).toMatchObject({ exists: true, state: 'running' });
    expect(state('h2', name).exists).toBe(false);
  }
  await waitFor('the counter to continue at home', () => (state('h1', names[0]!).workload?.counter ?? 0) > before + 5, 10_000, 100);
  expect(ctl('h1', 'verify', names[0]!)).toEqual({ verdict: 'ok' });
  client.send('home again');
  await client.waitFor(/echo home again/);
});
