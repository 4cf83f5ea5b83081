/**
 * Test containers on the sandbox hosts for the migration e2e tests: start one on h1, read its state on either host,
 * check that a failed migration left things as they were, and remove everything a test started.
 */
import { join } from 'node:path';
import { startNetnsTcpClient, waitFor, type NetnsTcpClient } from '@ferry/core/testing';
import { LAN_NETNS, ctl, onHost } from './sandbox';

export interface Started {
  name: string;
  address: string;
  port: number;
  stateFile: string;
}
export interface State {
  exists: boolean;
  state?: string;
  pid?: number;
  workload?: { counter: number };
}

let seq = 0;
const clients: NetnsTcpClient[] = [];
const perTest: [host: 'h1' | 'h2', name: string][] = [];
const perSuite: [host: 'h1' | 'h2', name: string][] = [];

const remove = (list: [host: 'h1' | 'h2', name: string][]) => {
  const ctlPath = join(__dirname, '..', 'bin', 'container-ctl.js');
  const names = new Set<string>();
  for (const [host, name] of list.splice(0)) {
    onHost(host, ['node', ctlPath, 'remove', name]);
    names.add(name);
  }
  for (const name of names) onHost('h1', ['node', ctlPath, 'remove-bundle', name]);
};
/** After each test: its clients and containers go (on both hosts: it may have moved). */
export function removeTestContainers(): void {
  for (const c of clients.splice(0)) c.stop();
  remove(perTest);
}
export function removeSuiteContainers(): void {
  remove(perSuite);
}

/** A container on h1 for one test (removed after it), or with `forSuite` for a whole describe block. */
export function startContainer(memMib = 64, forSuite = false, dirtyPagesPerSec = 2000, extra: string[] = []): Started {
  const name = `e2e-${process.pid}-${++seq}`;
  // Each test's container has its own address on the LAN, so a leftover can never answer for another.
  const address = `10.77.0.${10 + seq}/24`;
  const started = ctl<Started>('h1', 'start', name, '--mem-mib', String(memMib), '--dirty-pages-per-sec', String(dirtyPagesPerSec), '--address', address, ...extra);
  (forSuite ? perSuite : perTest).push(['h1', name], ['h2', name]);
  return started;
}

export function state(host: 'h1' | 'h2', name: string): State {
  return ctl<State>(host, 'state', name);
}

/** Incoming migration directories on `host` that belong to container `name` (their journal names it). */
export function migrationsOf(host: 'h1' | 'h2', name: string): string[] {
  const r = onHost(host, ['grep', '-l', '-s', '-E', `"role":"destination".*"container":"${name}"`, '-r', '/var/lib/ferry/migrations', '--include', 'journal']);
  return r.stdout.split('\n').filter(Boolean);
}

/** The source runs (not paused) and keeps counting; the destination has no container and no migration files. */
export async function expectRolledBack(name: string): Promise<void> {
  const source = state('h1', name);
  expect(source).toMatchObject({ exists: true, state: 'running' });
  const counter = source.workload!.counter;
  await waitFor('the source to keep counting', () => (state('h1', name).workload?.counter ?? 0) > counter + 3, 10_000, 100);
  await waitFor('a clean destination', () => !state('h2', name).exists && migrationsOf('h2', name).length === 0, 15_000, 200);
}

/**
 * The container runs on h2, gone from h1, its counter past `before`, its memory intact, and `client`'s TCP connection
 * (made before the move) still carries data both ways; h2 keeps the committed migration (the bundle lives there).
 */
export async function expectMovedWithConnection(name: string, client: NetnsTcpClient, before: number, counterWaitMs = 10_000): Promise<void> {
  expect(state('h1', name).exists).toBe(false);
  expect(state('h2', name)).toMatchObject({ exists: true, state: 'running' });
  await waitFor('the counter to continue on h2', () => (state('h2', name).workload?.counter ?? 0) > before + 5, counterWaitMs, 100);
  expect(ctl('h2', 'verify', name)).toEqual({ verdict: 'ok' });
  const ticksBefore = client.lastTick();
  client.send('after');
  await client.waitFor(/echo after/);
  await waitFor('more ticks after the move', () => client.lastTick() > ticksBefore + 3);
  expect(client.process.exitCode).toBeNull();
  expect(migrationsOf('h2', name)).toHaveLength(1);
}

export function connectClient(c: Started): NetnsTcpClient {
  const client = startNetnsTcpClient(LAN_NETNS, c.address, c.port);
  clients.push(client);
  return client;
}
