/**
 * `ferry agent`: the destination side of a migration, spoken to over an SSH exec channel (stdin/stdout).
 *
 * Contract: a migration the agent prepared and did not see committed is undone when the channel closes for any
 * reason (source crash, SSH drop, Ctrl-C on the source): the restored container is removed and its files deleted.
 * That is what keeps "exactly one copy" when the source resumes after a failure.
 */
import { mkdirSync, readFileSync, rmSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { FerryError, assertContainerName, isFerryError, printable, privateImageFiles, startLazyPagesDaemon, startPageServerProcess, type CriuClient, type LazyPagesDaemon, type PageServerProcess, type RuntimeAdapter, type RuntimeName } from '@ferry/core';
import { freeLocalPort } from '../transport/free-port';
import { unpackDir } from '../transfer';
import { AgentPeer, PROTOCOL_VERSION } from './agent-peer';
import type { HelloParams, HelloResult, HostSummary, PrepareParams, RestoreParams, RestoreResultMessage, UploadParams, UploadResult } from './agent-messages';
import { ensureFreeCgroupsPath } from './cgroup-fixup';
import { ReplicaStore, type ReplicaMeta } from '../replication/replica-store';
import { PageLevels } from '../precopy/page-levels';
import { PageRecordDecoder, type PageRecord } from '../precopy/page-records';

export interface AgentDeps {
  runtime(name: RuntimeName): RuntimeAdapter;
  criu: CriuClient;
  hostSummary(): Promise<HostSummary>;
  /** /var/lib/ferry (or a test directory); migrations live in STATE/migrations/ID. */
  stateDir: string;
  cgroupRoots: readonly string[];
  log(line: string): void;
}

interface Incoming {
  id: string;
  dir: string;
  runtime: RuntimeName;
  name: string;
  restored: boolean;
  /**
   * Set (and recorded) before the runtime is asked to restore: a restore the connection outlives may still finish
   * (dockerd or runc carry on without the agent), so an undo must then remove what it made.
   */
  restoring?: boolean;
  /** The restore in flight, true once it succeeded; an undo waits for it. Not serialised. */
  restoreSettled?: Promise<boolean>;
  committed: boolean;
  /** Post-copy only; not serialised. */
  lazy?: LazyPagesDaemon;
  /** An image this migration loaded into the runtime (Docker): removed again when the migration is undone. */
  loadedImage?: string;
  /** Streamed stop-and-copy: the page server receiving the dump's memory; not serialised. */
  pageServer?: PageServerProcess;
  /** Hash-based pre-copy: the chain of parent image sets the rounds write; not serialised (the files are). */
  pages?: PageLevels;
}

const ID = /^[A-Za-z0-9-]{8,64}$/;
/** CRIU pre-copy rounds land in pre/N, where the final images' relative `parent` links expect them. */
const PRE_COPY_PART = /^pre\/[1-9][0-9]{0,2}$/;

export function serveAgent(input: Readable, output: Writable, deps: AgentDeps): Promise<void> {
  const peer = new AgentPeer(input, output, 'source');
  const replicas = new ReplicaStore(join(deps.stateDir, 'replicas'));
  const migrations = new Map<string, Incoming>();
  let greeted = false;

  const get = (id: unknown): Incoming => {
    const m = typeof id === 'string' ? migrations.get(id) : undefined;
    if (!m) throw new FerryError('ERR_AGENT_PROTOCOL', `unknown migration ${String(id)}`);
    return m;
  };
  const requireHello = () => {
    if (!greeted) throw new FerryError('ERR_AGENT_PROTOCOL', 'hello first');
  };

  peer.handle('hello', async (params: HelloParams): Promise<HelloResult> => {
    if (params.protocol !== PROTOCOL_VERSION) {
      throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', `agent speaks protocol ${PROTOCOL_VERSION}, source speaks ${params.protocol}`, {
        hint: 'Install the same ferry version on both hosts.',
      });
    }
    greeted = true;
    deps.log(`hello from ${printable(params.source?.hostname, 64)} (ferry ${printable(params.ferryVersion, 32)})`);
    return { protocol: PROTOCOL_VERSION, host: await deps.hostSummary() };
  });

  peer.handle('prepare', async (params: PrepareParams) => {
    requireHello();
    if (!ID.test(params.migrationId)) throw new FerryError('ERR_AGENT_PROTOCOL', 'bad migration id');
    assertContainerName(String(params.name));
    const adapter = deps.runtime(params.runtime);
    try {
      await adapter.inspect(params.name);
      throw new FerryError('ERR_RUNTIME_NAME_TAKEN', `a ${params.runtime} container named ${params.name} already exists on the destination`, {
        hint: 'Remove it there first, or migrate under another name with --name.',
      });
    } catch (err) {
      if (!isFerryError(err, 'ERR_RUNTIME_NOT_FOUND')) throw err;
    }
    const dir = join(deps.stateDir, 'migrations', params.migrationId);
    // A new directory or nothing: reusing one would make this migration's undo delete what another one left there
    // (a committed container's bundle).
    mkdirSync(join(deps.stateDir, 'migrations'), { recursive: true, mode: 0o700 });
    try {
      mkdirSync(dir, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      throw new FerryError('ERR_AGENT_PROTOCOL', `migration ${params.migrationId} already exists on this host`, {
        hint: 'Every migration needs a new ID; a source that reuses one is not ferry, or is broken.',
      });
    }
    for (const sub of ['bundle', 'images', 'work', 'cpuinfo', 'pre']) mkdirSync(join(dir, sub), { mode: 0o700 });
    const m: Incoming = { id: params.migrationId, dir, runtime: params.runtime, name: params.name, restored: false, committed: false };
    migrations.set(m.id, m);
    record(m);
    return { dir, freeDiskBytes: freeBytes(dir) };
  });

  // Replication: a round lands in the standby's replica store (replica-store.ts), not in a migration directory.
  peer.handle('replica-prepare', async (params: PrepareParams) => {
    requireHello();
    if (!ID.test(params.migrationId)) throw new FerryError('ERR_AGENT_PROTOCOL', 'bad round id');
    const dir = replicas.beginRound(params.name, params.migrationId);
    const m: Incoming = { id: params.migrationId, dir, runtime: params.runtime, name: params.name, restored: false, committed: false };
    migrations.set(m.id, m);
    return { dir, freeDiskBytes: freeBytes(dir) };
  });

  peer.handle('replica-commit', async (params: { migrationId: string; meta: ReplicaMeta }) => {
    const m = get(params.migrationId);
    rmSync(join(m.dir, 'work'), { recursive: true, force: true });
    const replica = replicas.completeRound(m.name, m.id, { ...params.meta, container: m.name, runtime: m.runtime, roundId: m.id });
    m.committed = true;
    migrations.delete(m.id);
    deps.log(`replica of ${m.name} complete: ${replica.dir}`);
    return { dir: replica.dir };
  });

  peer.handle('upload', async (params: UploadParams, stream): Promise<UploadResult> => {
    const m = get(params.migrationId);
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'upload without data');
    if (!['bundle', 'images', 'cpuinfo'].includes(params.part) && !PRE_COPY_PART.test(params.part)) throw new FerryError('ERR_AGENT_PROTOCOL', `bad part ${params.part}`);
    // Images are 0700 throughout; a bundle keeps its directories' own modes (CRIU checks them: an LXC rootfs that
    // became 0700 fails to restore with "File . has bad mode"). The migration dir above it is 0700.
    const result = await unpackDir(stream, join(m.dir, params.part), params.part === 'bundle' ? {} : { dirMode: 0o700, fileMode: 0o600 });
    return { files: result.files, bytes: result.bytes };
  });

  // Runtimes whose containers need an image (Docker): is it here, and if not, load the one the source streams.
  peer.handle('image-has', async (params: { migrationId: string; image: string }) => {
    const m = get(params.migrationId);
    const images = deps.runtime(m.runtime).images;
    if (!images) throw new FerryError('ERR_AGENT_PROTOCOL', `${m.runtime} containers need no image`);
    return { present: await images.has(params.image) };
  });

  peer.handle('image-load', async (params: { migrationId: string; image: string }, stream): Promise<UploadResult> => {
    const m = get(params.migrationId);
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'image-load without data');
    const images = deps.runtime(m.runtime).images;
    if (!images) throw new FerryError('ERR_AGENT_PROTOCOL', `${m.runtime} containers need no image`);
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    m.loadedImage = params.image; // noted first: a load that fails half-way is undone too
    record(m);
    await images.load(stream);
    if (!(await images.has(params.image))) {
      throw new FerryError('ERR_AGENT_FAILED', `the image ${params.image} is still missing after loading what the source sent`, {
        hint: 'Check the Docker daemon on the destination (`docker images`).',
      });
    }
    deps.log(`loaded image ${params.image} (${bytes} bytes)`);
    return { files: 1, bytes };
  });

  // Streamed stop-and-copy: the dump sends its memory here (through the source's tunnel) while it runs, instead of
  // writing it to the source's disk and sending it afterwards.
  peer.handle('page-server', async (params: { migrationId: string }) => {
    const m = get(params.migrationId);
    m.pageServer = await startPageServerProcess({
      criuPath: deps.criu.criuPath,
      imagesDir: join(m.dir, 'images'),
      workDir: join(m.dir, 'work'),
      address: '127.0.0.1',
      port: await freeLocalPort(),
    });
    return { port: m.pageServer.port };
  });

  // Hash-based pre-copy: one round of changed pages, while the container still runs on the source. Each round
  // becomes one level of a parent image chain on disk (page-levels.ts).
  peer.handle('precopy-round', async (params: { migrationId: string }, stream) => {
    const m = get(params.migrationId);
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'precopy-round without data');
    const levels = (m.pages ??= new PageLevels(join(m.dir, 'levels')));
    levels.beginRound();
    const decoder = new PageRecordDecoder();
    let bytes = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bytes += chunk.length;
        const records: PageRecord[] = [];
        decoder.push(chunk, (r) => records.push(r));
        for (const r of records) await levels.add(r);
      }
      decoder.end();
    } catch (err) {
      await levels.close();
      throw err;
    }
    const { pages, held, rewritten } = await levels.endRound();
    return { pages, bytes, held, rewritten, level: levels.levels };
  });

  peer.handle('cpuinfo-check', async (params: UploadParams, stream) => {
    const m = get(params.migrationId);
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'cpuinfo-check without data');
    const dir = join(m.dir, 'cpuinfo');
    await unpackDir(stream, dir, { dirMode: 0o700, fileMode: 0o600 });
    const result = await deps.criu.cpuinfoCheck(dir);
    return { compatible: result.compatible, detail: result.compatible ? undefined : `see ${result.logPath}` };
  });

  peer.handle('restore', async (params: RestoreParams): Promise<RestoreResultMessage> => {
    const m = get(params.migrationId);
    const bundle = join(m.dir, 'bundle');
    ensureFreeCgroupsPath(bundle, deps.cgroupRoots, m.id.slice(0, 8));
    if (m.pageServer) {
      // The dump is over on the source; its page server finishes writing the pages it received.
      const { code, signal } = await m.pageServer.exited;
      if (code !== 0) {
        throw new FerryError('ERR_CRIU_PAGE_SERVER_FAILED', `the page server receiving the memory of ${m.name} ended with ${signal ?? `exit ${code}`} (log: ${m.pageServer.logPath})`, {
          hint: 'The source resumes; check the link between the hosts and migrate again.',
        });
      }
    }
    const started = Date.now();
    const imagesDir = join(m.dir, 'images');
    privateImageFiles(imagesDir); // the page server's CRIU wrote its pages 0644
    const workDir = join(m.dir, 'work');
    // Pages marked "in parent" by the source's rewrite come from the top of the pre-copy chain.
    const top = m.pages?.levels;
    await m.pages?.close(); // the rounds are over
    if (top) symlinkSync(`../levels/${top}`, join(imagesDir, 'parent'));
    const lazy = params.lazyPagesPort !== undefined;
    if (params.lazyPagesPort !== undefined) {
      m.lazy = await startLazyPagesDaemon({ criuPath: deps.criu.criuPath, imagesDir, workDir, pageServer: { address: '127.0.0.1', port: params.lazyPagesPort } });
      void m.lazy.exited.then(({ code }) => deps.log(`lazy-pages daemon exited (${code})`));
    }
    m.restoring = true;
    record(m);
    let result;
    try {
      const attempt = deps.runtime(m.runtime).restore({
        imagesDir,
        workDir,
        name: m.name,
        bundle,
        tcpEstablished: params.tcpEstablished,
        fileLocks: params.fileLocks,
        extUnixSk: params.extUnixSk,
        lazyPages: lazy,
        readdress: params.readdress,
      });
      m.restoreSettled = attempt.then(() => true, () => false);
      result = await attempt;
    } catch (err) {
      m.lazy?.kill();
      throw err;
    }
    m.restored = true;
    record(m);
    deps.log(`restored ${m.name} (pid ${result.container.pid ?? '?'}) in ${Date.now() - started} ms`);
    return { pid: result.container.pid, restoreMs: result.restoreMs };
  });

  // Post-copy: answers once every page has arrived. From that moment this copy is the one that counts (the source
  // ends its page server cleanly on this answer, and CRIU then kills the source tree), so it is committed here:
  // should the connection die before the source's commit arrives, it stays.
  peer.handle('await-pages', async (params: { migrationId: string }) => {
    const m = get(params.migrationId);
    if (!m.lazy || !m.restored) throw new FerryError('ERR_AGENT_PROTOCOL', 'await-pages without a post-copy restore');
    const { code, signal } = await m.lazy.exited;
    if (code !== 0) {
      throw new FerryError('ERR_CRIU_RESTORE_FAILED', `criu lazy-pages ended (${signal ?? `exit ${code}`}) before every page arrived (log: ${m.lazy.logPath})`, {
        hint: 'The source resumes its copy; check the link between the hosts and migrate again.',
      });
    }
    m.committed = true;
    record(m);
    return { complete: true };
  });

  peer.handle('commit', async (params: { migrationId: string }) => {
    const m = get(params.migrationId);
    if (!m.restored) throw new FerryError('ERR_AGENT_PROTOCOL', 'commit before restore');
    if (m.lazy) {
      const { code } = await m.lazy.exited;
      if (code !== 0) {
        throw new FerryError('ERR_CRIU_RESTORE_FAILED', `post-copy: criu lazy-pages exited with ${code} before every page arrived (log: ${m.lazy.logPath})`, {
          hint: 'The source resumes its copy; check the network between the hosts and migrate again.',
        });
      }
    }
    m.committed = true;
    record(m);
    // The images served their purpose; the bundle is the container's from now on.
    for (const sub of ['images', 'work', 'levels', 'pre']) rmSync(join(m.dir, sub), { recursive: true, force: true });
    return { committed: true };
  });

  peer.handle('abort', async (params: { migrationId: string }) => {
    const m = migrations.get(params.migrationId);
    if (m) await undo(m);
    return { aborted: true };
  });

  async function undo(m: Incoming): Promise<void> {
    migrations.delete(m.id);
    await undoMigration(m, deps);
  }

  return new Promise((resolve, reject) => {
    // 'end' and 'close' both arrive: the second must wait for the first's undo, not resolve at once (the caller
    // exits then, and an undo still waiting for a restore would never remove what it made).
    let finishing: Promise<void> | undefined;
    const finish = () => {
      finishing ??= (async () => {
        for (const m of [...migrations.values()]) await undo(m);
      })();
      // Input that was not the protocol (garbage, a truncated frame) is a failure of this agent run, not a clean end.
      void finishing.then(() => (isFerryError(peer.closeReason, 'ERR_AGENT_PROTOCOL') ? reject(peer.closeReason) : resolve()));
    };
    input.once('close', finish);
    input.once('end', finish);
  });
}

const RECORD = 'migration.json';

/** Written at each step so that a later `ferry agent --cleanup ID` knows what a dead agent left behind. */
function record(m: Incoming): void {
  const { lazy: _daemon, pageServer: _server, pages: _pages, restoreSettled: _settled, ...saved } = m;
  writeFileSync(join(m.dir, RECORD), JSON.stringify(saved), { mode: 0o600 });
}

async function undoMigration(m: Incoming, deps: Pick<AgentDeps, 'runtime' | 'log'>): Promise<void> {
  if (m.committed) return;
  m.lazy?.kill();
  m.pageServer?.kill();
  await m.pages?.close();
  // A restore still running when the connection went (Docker's start can take a while) is waited for; one recorded
  // as begun by an agent that died since may have finished without it: either way what it made is removed.
  const restored = m.restored || (m.restoreSettled ? await m.restoreSettled : m.restoring === true);
  if (restored) {
    deps.log(`rolling back: removing restored ${m.name}`);
    await deps.runtime(m.runtime).remove(m.name).catch((err: unknown) => deps.log(`cannot remove ${m.name}: ${(err as Error).message}`));
  }
  if (m.loadedImage) {
    const image = m.loadedImage;
    await deps.runtime(m.runtime).images?.remove(image).catch((err: unknown) => deps.log(`cannot remove image ${image}: ${(err as Error).message}`));
  }
  rmSync(m.dir, { recursive: true, force: true });
}

/**
 * Undoes migration `id` on this host after its agent died (run by the source's rollback over a new connection):
 * removes the container it restored unless the migration was committed, then its files. Idempotent.
 */
export async function cleanupMigration(id: string, deps: Pick<AgentDeps, 'runtime' | 'log' | 'stateDir'>): Promise<{ cleaned: boolean; committed: boolean }> {
  if (!ID.test(id)) throw new FerryError('ERR_PRECHECK_BAD_INPUT', `bad migration id ${printable(id, 80)}`, { hint: 'Migration ids are 8-64 letters, digits and dashes, as the source printed them.' })
  const dir = join(deps.stateDir, 'migrations', id);
  let m: Incoming;
  try {
    m = JSON.parse(readFileSync(join(dir, RECORD), 'utf8')) as Incoming;
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return { cleaned: false, committed: false };
  }
  await undoMigration({ ...m, dir }, deps);
  return { cleaned: !m.committed, committed: m.committed };
}


function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}
