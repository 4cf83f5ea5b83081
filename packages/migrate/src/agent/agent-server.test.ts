/**
 * The agent's undo when its connection goes while a restore runs (Docker's takes seconds; runc and dockerd carry on
 * without the agent): the restore is waited for, and what it made is removed. Also the image a migration loaded.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { FerryError, type ContainerInfo, type CriuClient, type RestoreResult, type RuntimeAdapter } from '@ferry/core';
import { AgentPeer, PROTOCOL_VERSION } from '../protocol/agent-peer';
import type { HostSummary } from '../protocol/agent-messages';
import { serveAgent } from './agent-server';
import { cleanupMigration } from './destination-moves';
import { Journal } from '../journal/journal';

const HOST: HostSummary = {
  hostId: 'dest',
  hostname: 'dest',
  kernel: '6',
  arch: 'x64',
  pageSizeBytes: 4096,
  ferryVersion: '0',
  criu: { versionOk: true, checkOk: true, memTrack: false, lazyPages: false },
  runtimes: [],
  freeDiskBytes: 1,
};

/** A runtime whose restore finishes when the test says so; every remove is noted. */
function slowRuntime() {
  let finish!: (ok: boolean) => void;
  const calls: string[] = [];
  const images = new Set<string>();
  const restoring = new Promise<boolean>((resolve) => (finish = resolve));
  const notFound = () => new FerryError('ERR_RUNTIME_NOT_FOUND', 'none');
  const runtime: RuntimeAdapter = {
    name: 'docker',
    images: {
      imageOf: async () => 'img',
      has: async (image) => images.has(image),
      save: async () => undefined,
      load: async (tar: Readable) => {
        for await (const _chunk of tar) void _chunk;
        images.add('sha256:abc');
        calls.push('load');
      },
      remove: async (image) => {
        images.delete(image);
        calls.push(`remove-image ${image}`);
      },
      missingNetworks: async (names) => names.filter((n) => n !== 'lan'),
    },
    availability: async () => ({ usable: true }),
    list: async () => [],
    inspect: async (): Promise<ContainerInfo> => {
      throw notFound();
    },
    preflight: async () => undefined,
    checkpoint: async () => {
      throw new Error('not here');
    },
    restore: async (): Promise<RestoreResult> => {
      calls.push('restore');
      if (!(await restoring)) throw new FerryError('ERR_CRIU_RESTORE_FAILED', 'no');
      calls.push('restored');
      return { container: { ref: { runtime: 'docker', id: 'ct' }, state: 'running', pid: 7 }, restoreMs: 1 };
    },
    remove: async (id) => void calls.push(`remove ${id}`),
    pause: async () => undefined,
    resume: async () => undefined,
    fenceNetwork: async () => ({ unfence: async () => undefined }),
    networkTies: async () => ({ addresses: [], establishedTcp: 0 }),
  };
  return { runtime, calls, finish, images };
}

let stateDir: string;
beforeEach(() => {
  stateDir = mkdtempSync(join(tmpdir(), 'ferry-agent-test-'));
});
afterEach(() => rmSync(stateDir, { recursive: true, force: true }));

function start(runtime: RuntimeAdapter): { source: AgentPeer; toAgent: Writable; served: Promise<void> } {
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const served = serveAgent(toAgent, fromAgent, {
    runtime: () => runtime,
    criu: {} as CriuClient,
    hostSummary: async () => HOST,
    stateDir,
    cgroupRoots: [],
    log: () => undefined,
  });
  return { source: new AgentPeer(fromAgent, toAgent, 'agent'), toAgent, served };
}

async function prepared(source: AgentPeer, id: string): Promise<void> {
  await source.request('hello', { protocol: PROTOCOL_VERSION, ferryVersion: '0', source: { hostId: 'src', hostname: 'src' } });
  await source.request('prepare', { migrationId: id, runtime: 'docker', name: 'ct' });
}

const ID = '0123456789abcdef';

test('the connection goes while the restore runs: the agent waits for it and removes the restored container', async () => {
  const { runtime, calls, finish } = slowRuntime();
  const { source, toAgent, served } = start(runtime);
  await prepared(source, ID);
  const restore = source.request('restore', { migrationId: ID, tcpEstablished: false, fileLocks: false, extUnixSk: false });
  restore.catch(() => undefined);
  while (!calls.includes('restore')) await new Promise((r) => setTimeout(r, 5));
  toAgent.end(); // the SSH session is gone
  await new Promise((r) => setTimeout(r, 50));
  expect(calls).toEqual(['restore']); // nothing removed before the restore is over
  finish(true);
  await served;
  expect(calls).toEqual(['restore', 'restored', 'remove ct']);
  expect(readdirSync(join(stateDir, 'migrations'))).toEqual([]);
});

test('a restore that fails after the connection went leaves nothing to remove (not a container of that name it did not make)', async () => {
  const { runtime, calls, finish } = slowRuntime();
  const { source, toAgent, served } = start(runtime);
  await prepared(source, ID);
  source.request('restore', { migrationId: ID, tcpEstablished: false, fileLocks: false, extUnixSk: false }).catch(() => undefined);
  while (!calls.includes('restore')) await new Promise((r) => setTimeout(r, 5));
  toAgent.end();
  finish(false);
  await served;
  expect(calls).toEqual(['restore']);
});

test('cleanup by a new agent after the old one died mid-restore removes the container; an image it loaded goes too', async () => {
  const { runtime, calls } = slowRuntime();
  const dir = join(stateDir, 'migrations', ID);
  const journal = Journal.create(dir, { t: 'begin', role: 'destination', id: ID, runtime: 'docker', container: 'ct', peer: 'src' });
  journal.hold({ kind: 'owner', pids: [{ pid: 1, startTime: 1 }] });
  journal.hold({ kind: 'image-loaded', image: 'sha256:abc' });
  journal.hold({ kind: 'restored', name: 'ct' });
  journal.close();
  const result = await cleanupMigration(ID, { runtime: () => runtime, log: () => undefined, stateDir });
  expect(result).toEqual({ cleaned: true, committed: false });
  expect(calls).toEqual(['remove ct', 'remove-image sha256:abc']);
});

test('an image loaded for a migration that is then aborted is removed again', async () => {
  const { runtime, calls, images } = slowRuntime();
  const { source, toAgent, served } = start(runtime);
  await prepared(source, ID);
  expect(await source.request('image-has', { migrationId: ID, image: 'sha256:abc' })).toEqual({ present: false });
  // The networks the container rejoins are asked for in the same round trip; the runtime says which are missing.
  expect(await source.request('image-has', { migrationId: ID, image: 'sha256:abc', networks: ['lan', 'backend'] })).toEqual({ present: false, missingNetworks: ['backend'] });
  const loaded = await source.request<{ bytes: number }>('image-load', { migrationId: ID, image: 'sha256:abc' }, async (sink) => {
    sink.write(Buffer.alloc(1000, 1));
  });
  expect(loaded.bytes).toBe(1000);
  expect(images.has('sha256:abc')).toBe(true);
  await source.request('abort', { migrationId: ID });
  expect(calls).toEqual(['load', 'remove-image sha256:abc']);
  toAgent.end();
  await served;
});

test('prepare refuses a migration ID that already has a directory: a committed container\'s files are never undone (#14)', async () => {
  const { runtime, calls } = slowRuntime();
  const dir = join(stateDir, 'migrations', ID);
  mkdirSync(join(dir, 'bundle', 'rootfs'), { recursive: true });
  writeFileSync(join(dir, 'bundle', 'rootfs', 'data'), 'the running container');
  writeFileSync(join(dir, 'journal'), `${JSON.stringify({ t: 'begin', role: 'destination', id: ID, runtime: 'docker', container: 'ct', peer: 'src' })}\n`);
  const { source, toAgent, served } = start(runtime);
  await source.request('hello', { protocol: PROTOCOL_VERSION, ferryVersion: '0', source: { hostId: 'src', hostname: 'src' } });
  await expect(source.request('prepare', { migrationId: ID, runtime: 'docker', name: 'other' })).rejects.toMatchObject({ code: 'ERR_AGENT_PROTOCOL', message: expect.stringMatching(/already/) });
  toAgent.end(); // the undo of whatever this connection prepared
  await served;
  expect(readFileSync(join(dir, 'bundle', 'rootfs', 'data'), 'utf8')).toBe('the running container');
  expect(readFileSync(join(dir, 'journal'), 'utf8')).toMatch(/"container":"ct"/);
  expect(calls).toEqual([]);
});

test("the source's hostname cannot inject log lines (#14)", async () => {
  const { runtime } = slowRuntime();
  const lines: string[] = [];
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  const served = serveAgent(toAgent, fromAgent, { runtime: () => runtime, criu: {} as CriuClient, hostSummary: async () => HOST, stateDir, cgroupRoots: [], log: (l) => lines.push(l) });
  const source = new AgentPeer(fromAgent, toAgent, 'agent');
  await source.request('hello', { protocol: PROTOCOL_VERSION, ferryVersion: '0\nferry agent: restored web', source: { hostId: 'src', hostname: 'evil\nferry agent: committed web' } });
  toAgent.end();
  await served;
  expect(lines.join('\n').split('\n')).toHaveLength(lines.length);
  expect(lines[0]).toContain('evil\\x0aferry agent: committed web');
});

test('input that is not the protocol ends the agent with ERR_AGENT_PROTOCOL, not a quiet success (#14)', async () => {
  const { runtime } = slowRuntime();
  const toAgent = new PassThrough();
  const served = serveAgent(toAgent, new PassThrough(), { runtime: () => runtime, criu: {} as CriuClient, hostSummary: async () => HOST, stateDir, cgroupRoots: [], log: () => undefined });
  toAgent.end('garbage\n');
  await expect(served).rejects.toMatchObject({ code: 'ERR_AGENT_PROTOCOL' });
});
