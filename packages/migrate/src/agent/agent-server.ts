/**
 * `ferry agent`: the destination side of a migration, spoken to over an SSH exec channel (stdin/stdout). Each move
 * it prepares has a journal in STATE/migrations/ID (journal/journal.ts); its commit is decided once (decision.ts).
 *
 * Contract: a migration the agent prepared and did not see committed is undone when the channel closes for any
 * reason (source crash, SSH drop, Ctrl-C on the source): the restored container is removed and its files deleted.
 * That is what keeps "exactly one copy" when the source resumes after a failure. A committed post-copy keeps the
 * agent alive until its pages' outcome is known.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { FerryError, assertContainerName, isFerryError, printable, startPageServerProcess, type CriuClient, type RuntimeAdapter, type RuntimeName } from '@ferry/core';
import { Journal, migrationDir } from '../journal/journal';
import { processId, selfId } from '../journal/proc-identity';
import { openPageLink, openResumablePageLink } from '../pages/destination-link';
import { unpackDir } from '../transfer';
import { AgentPeer, PROTOCOL_VERSION } from '../protocol/agent-peer';
import type { HelloParams, HelloResult, HostSummary, PageLinkResult, PrepareParams, UploadParams, UploadResult } from '../protocol/agent-messages';
import { awaitPages, serveCommit } from './commit-service';
import { undoIncoming } from './destination-moves';
import { serveReplicaRounds } from './replica-service';
import { MIGRATION_ID, freeBytes, isTreePart, type Incoming } from './incoming';
import { standbyFillRelay } from './local-page-fill';
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
  /** How to run ferry's CLI here (its page-link-keeper command makes post-copy's link resumable); unset: not resumable. */
  ferryCommand?: readonly string[];
}

/** CRIU pre-copy rounds land in pre/N, where the final images' relative `parent` links expect them. */
const PRE_COPY_PART = /^pre\/[1-9][0-9]{0,2}$/;

export function serveAgent(input: Readable, output: Writable, deps: AgentDeps): Promise<void> {
  const peer = new AgentPeer(input, output, 'source');
  const migrations = new Map<string, Incoming>();
  let greeted = false;
  let sourceHost = 'unknown';

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
    sourceHost = printable(params.source?.hostname, 64);
    deps.log(`hello from ${printable(params.source?.hostname, 64)} (ferry ${printable(params.ferryVersion, 32)})`);
    return { protocol: PROTOCOL_VERSION, host: await deps.hostSummary() };
  });

  peer.handle('prepare', async (params: PrepareParams) => {
    requireHello();
    if (!MIGRATION_ID.test(params.migrationId)) throw new FerryError('ERR_AGENT_PROTOCOL', 'bad migration id');
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
    const dir = migrationDir(deps.stateDir, params.migrationId);
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
    const journal = Journal.create(dir, { t: 'begin', role: 'destination', id: params.migrationId, runtime: params.runtime, container: params.name, peer: sourceHost });
    journal.hold({ kind: 'owner', pids: [selfId()] });
    for (const sub of ['bundle', 'images', 'work', 'cpuinfo', 'pre']) mkdirSync(join(dir, sub), { mode: 0o700 });
    const m: Incoming = { id: params.migrationId, dir, runtime: params.runtime, name: params.name, restored: false, committed: false, journal };
    migrations.set(m.id, m);
    return { dir, freeDiskBytes: freeBytes(dir) };
  });

  serveReplicaRounds(peer, { stateDir: deps.stateDir, migrations, get, requireHello, log: deps.log });

  peer.handle('upload', async (params: UploadParams, stream): Promise<UploadResult> => {
    const m = get(params.migrationId);
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'upload without data');
    const tree = isTreePart(params.part);
    if (!tree && !['images', 'cpuinfo'].includes(params.part) && !PRE_COPY_PART.test(params.part)) throw new FerryError('ERR_AGENT_PROTOCOL', `bad part ${params.part}`);
    // Images are 0700 throughout; a bundle, rootfs or mount keeps its directories' own modes (CRIU checks them: an
    // LXC rootfs that became 0700 fails to restore with "File . has bad mode"). The migration dir above it is 0700.
    const result = await unpackDir(stream, join(m.dir, params.part), tree ? {} : { dirMode: 0o700, fileMode: 0o600 });
    return { files: result.files, bytes: result.bytes };
  });

  // Runtimes whose containers need an image (Docker): is it here, and if not, load the one the source streams.
  // The networks the restore joins the container to again are asked for in the same round trip (Docker).
  peer.handle('image-has', async (params: { migrationId: string; image: string; networks?: string[] }) => {
    const m = get(params.migrationId);
    const images = deps.runtime(m.runtime).images;
    if (!images) throw new FerryError('ERR_AGENT_PROTOCOL', `${m.runtime} containers need no image`);
    const present = await images.has(params.image);
    if (!params.networks?.length) return { present };
    return { present, missingNetworks: (await images.missingNetworks?.(params.networks)) ?? [] };
  });

  peer.handle('image-load', async (params: { migrationId: string; image: string }, stream): Promise<UploadResult> => {
    const m = get(params.migrationId);
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'image-load without data');
    const images = deps.runtime(m.runtime).images;
    if (!images) throw new FerryError('ERR_AGENT_PROTOCOL', `${m.runtime} containers need no image`);
    let bytes = 0;
    stream.on('data', (chunk: Buffer) => (bytes += chunk.length));
    m.loadedImage = params.image; // noted first: a load that fails half-way is undone too
    m.journal?.hold({ kind: 'image-loaded', image: params.image });
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
  // writing it to the source's disk and sending it afterwards. The page server listens nowhere (pages/destination-link.ts).
  peer.handle('page-server', async (params: { migrationId: string }): Promise<PageLinkResult> => {
    const m = get(params.migrationId);
    const link = await openLink(m);
    m.pageServer = await startPageServerProcess({
      criuPath: deps.criu.criuPath,
      imagesDir: join(m.dir, 'images'),
      workDir: join(m.dir, 'work'),
      socket: link.pair,
    });
    link.attach();
    const server = processId(m.pageServer.pid);
    m.journal?.hold({ kind: 'page-server', pids: server ? [server] : [] });
    return { socketPath: link.socketPath };
  });

  // Post-copy: the link the restore's lazy-pages daemon gets its pages over (started by the restore).
  // Resumable when this agent can start a keeper (page-link-keeper.ts): the link then outlives the agent and SSH.
  peer.handle('page-link', async (params: { migrationId: string }): Promise<PageLinkResult> => {
    const m = get(params.migrationId);
    const link = await openLink(m, deps.ferryCommand);
    const keeper = link.keeper && processId(link.keeper.pid);
    if (keeper) m.journal?.hold({ kind: 'page-link', pids: [keeper] });
    return { socketPath: link.socketPath, resumable: link.keeper !== undefined };
  });

  async function openLink(m: Incoming, ferryCommand?: readonly string[]) {
    if (m.pageLink) throw new FerryError('ERR_AGENT_PROTOCOL', `migration ${m.id} already has a page link`);
    const dir = join(m.dir, 'link');
    m.pageLink = ferryCommand ? await openResumablePageLink(dir, ferryCommand) : await openPageLink(dir);
    return m.pageLink;
  }

  // Hash-based pre-copy: one round of changed pages, while the container still runs on the source. Each round
  // becomes one level of a parent image chain on disk (page-levels.ts).
  peer.handle('precopy-round', async (params: { migrationId: string; lazyRestore?: boolean }, stream) => {
    const m = get(params.migrationId);
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'precopy-round without data');
    // The lazy restore's relay process loads while the container still runs, not once it is frozen.
    if (params.lazyRestore === true && deps.ferryCommand) standbyFillRelay(m, deps.ferryCommand);
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

  // The dry run's link measurement: bytes in, counted and dropped. Nothing is written on this host.
  peer.handle('probe', async (_params: unknown, stream) => {
    requireHello();
    if (!stream) throw new FerryError('ERR_AGENT_PROTOCOL', 'probe without data');
    let bytes = 0;
    for await (const chunk of stream) bytes += (chunk as Buffer).length;
    return { bytes };
  });

  serveCommit(peer, { ...deps, migrations, get });

  return new Promise((resolve, reject) => {
    // 'end' and 'close' both arrive: the second must wait for the first's undo, not resolve at once (the caller
    // exits then, and an undo still waiting for a restore would never remove what it made).
    let finishing: Promise<void> | undefined;
    const finish = () => {
      finishing ??= (async () => {
        for (const m of [...migrations.values()]) {
          migrations.delete(m.id);
          // A committed post-copy still needs this agent: it alone sees whether every page arrives.
          if (m.committed && m.lazy) await awaitPages(m, deps).catch((err: unknown) => deps.log((err as Error).message));
          else await undoIncoming(m, deps);
        }
      })();
      // Input that was not the protocol (garbage, a truncated frame) is a failure of this agent run, not a clean end.
      void finishing.then(() => (isFerryError(peer.closeReason, 'ERR_AGENT_PROTOCOL') ? reject(peer.closeReason) : resolve()));
    };
    input.once('close', finish);
    input.once('end', finish);
  });
}
