import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { FerryError, type CriuClient, type RuntimeAdapter } from '@ferry/core';
import { packDir } from '../transfer';
import { AgentPeer, PROTOCOL_VERSION } from '../protocol/agent-peer';
import type { HostSummary } from '../protocol/agent-messages';
import { serveAgent } from './agent-server';

const ID = 'a1b2c3d4-precopy';
let work: string;
let source: AgentPeer;
let cut: () => void;
let served: Promise<void>;

beforeEach(async () => {
  work = mkdtempSync(join(tmpdir(), 'ferry-agent-precopy-'));
  const toAgent = new PassThrough();
  const fromAgent = new PassThrough();
  served = serveAgent(toAgent, fromAgent, {
    // No container of that name yet; nothing is restored in these tests.
    runtime: () => ({ inspect: async () => Promise.reject(new FerryError('ERR_RUNTIME_NOT_FOUND', 'none')) }) as unknown as RuntimeAdapter,
    criu: {} as CriuClient,
    hostSummary: async () => ({ hostId: 'dest' }) as HostSummary,
    stateDir: join(work, 'state'),
    cgroupRoots: [],
    log: () => undefined,
  });
  source = new AgentPeer(fromAgent, toAgent, 'agent');
  cut = () => (toAgent.end(), fromAgent.end());
  await source.request('hello', { protocol: PROTOCOL_VERSION, ferryVersion: 'test', source: { hostId: 'src', hostname: 'src' } });
  await source.request('prepare', { migrationId: ID, runtime: 'runc', name: 'ct1' });
});
afterEach(async () => {
  cut();
  await served;
  rmSync(work, { recursive: true, force: true });
});

/** A round directory as CRIU leaves it: pages and a relative `parent` link to the previous round. */
function round(n: number): string {
  const dir = join(work, 'out', 'pre', String(n));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `pages-${n}.img`), `round ${n}`);
  if (n > 1) symlinkSync(`../${n - 1}`, join(dir, 'parent'));
  return dir;
}

const upload = (part: string, dir: string) => source.request('upload', { migrationId: ID, part }, (sink) => packDir(dir, sink).then(() => undefined));

test('pre-copy rounds land in pre/N with their parent links intact, where the final images expect them', async () => {
  await upload('pre/1', round(1));
  await upload('pre/2', round(2));
  const pre = join(work, 'state', 'migrations', ID, 'pre');
  expect(readFileSync(join(pre, '2', 'pages-2.img'), 'utf8')).toBe('round 2');
  expect(readlinkSync(join(pre, '2', 'parent'))).toBe('../1');
  // The final images (OUTGOING/images with parent ../pre/2 on the source) resolve to the same round here.
  expect(readFileSync(join(pre, '2', 'parent', 'pages-1.img'), 'utf8')).toBe('round 1');
});

test.each(['pre/0', 'pre/../bundle', 'pre/1/x', 'pre', 'pre/01', 'work'])('refuses the part %s', async (part) => {
  await expect(upload(part, round(1))).rejects.toMatchObject({ code: 'ERR_AGENT_PROTOCOL' });
});

test('an aborted migration leaves none of its rounds behind', async () => {
  await upload('pre/1', round(1));
  await source.request('abort', { migrationId: ID });
  expect(existsSync(join(work, 'state', 'migrations', ID))).toBe(false);
});
