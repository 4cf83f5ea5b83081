/**
 * ferry clone between the sandbox hosts: the original keeps running, the copy starts on h2 under a new name and
 * address; containers whose network identity would be shared are refused before anything is frozen.
 */
import { join } from 'node:path';
import { startNetnsTcpClient, waitFor, type NetnsTcpClient } from '@ferry/core/testing';
import { HOSTS_FILE, LAN_NETNS, ctl, ferryOn, onHost, sandbox } from './lib/sandbox';

jest.setTimeout(180_000);

interface State {
  exists: boolean;
  state?: string;
  workload?: { counter: number };
}

const name = `clone-${process.pid}`;
const copy = `${name}-copy`;
const clients: NetnsTcpClient[] = [];

beforeAll(() => {
  sandbox('up');
  ctl('h1', 'start', name, '--mem-mib', '32', '--dirty-pages-per-sec', '500', '--address', '10.77.0.150/24');
});
afterEach(() => {
  for (const c of clients.splice(0)) c.stop();
});
afterAll(() => {
  onHost('h1', ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove', name]);
  onHost('h2', ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove', copy]);
  onHost('h1', ['node', join(__dirname, 'bin', 'container-ctl.js'), 'remove-bundle', name]);
  sandbox('down');
});

const state = (host: 'h1' | 'h2', n: string) => ctl<State>(host, 'state', n);

test('refused while its address would be shared, with a hint, and nothing frozen', async () => {
  const run = await ferryOn('h1', ['clone', name, '--to', 'h2', '--name', copy, '--hosts-file', HOSTS_FILE]);
  expect(run.error?.code).toBe('ERR_PRECHECK_CLONE_CONFLICT');
  expect(run.error?.hint).toMatch(/--address/);
  expect(run.status).toBe(3);
  expect(state('h1', name)).toMatchObject({ exists: true, state: 'running' });
  expect(state('h2', copy).exists).toBe(false);
});

test('refused while it holds an established TCP connection', async () => {
  const client = startNetnsTcpClient(LAN_NETNS, '10.77.0.150', 8080);
  clients.push(client);
  await client.waitFor(/tick \d+/);
  const run = await ferryOn('h1', ['clone', name, '--to', 'h2', '--name', copy, '--address', 'eth0=10.77.0.151/24', '--hosts-file', HOSTS_FILE]);
  expect(run.error?.code).toBe('ERR_PRECHECK_CLONE_CONFLICT');
  expect(run.error?.message).toMatch(/established TCP/);
  expect(state('h2', copy).exists).toBe(false);
});

test('clones to h2 under a new name and address while the original keeps running', async () => {
  const run = await ferryOn('h1', ['clone', name, '--to', 'h2', '--name', copy, '--address', 'eth0=10.77.0.151/24', '--hosts-file', HOSTS_FILE]);
  expect(run.error).toBeUndefined();
  expect(run.status).toBe(0);
  expect(run.report).toMatchObject({ container: name, destinationName: copy });

  const original = state('h1', name);
  expect(original).toMatchObject({ exists: true, state: 'running' });
  await waitFor('the original to keep counting', () => (state('h1', name).workload?.counter ?? 0) > original.workload!.counter + 3, 10_000, 100);
  expect(state('h2', copy)).toMatchObject({ exists: true, state: 'running' });
  expect(ctl('h2', 'verify', copy)).toEqual({ verdict: 'ok' });

  // Both answer, each on its own address.
  for (const address of ['10.77.0.150', '10.77.0.151']) {
    const client = startNetnsTcpClient(LAN_NETNS, address, 8080);
    clients.push(client);
    client.send(`hello ${address}`);
    await client.waitFor(new RegExp(`echo hello ${address.replace(/\./g, '\\.')}`));
  }
});
