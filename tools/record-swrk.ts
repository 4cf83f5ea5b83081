/**
 * Records real `criu swrk` conversations as test fixtures (packages/core/src/criu/recorded/*.json, read by
 * rpc-codec.recorded.test.ts). Root and the provisioned host (CRIU >= 4.2) are needed:
 *
 *   npm run record:swrk          (npx tsc -b && node tools/dist/record-swrk.js packages/core/src/criu/recorded)
 *
 * The conversations are ferry's own: CriuClient on SwrkSession over nativeSocketPair, with encodeRequest and
 * decodeResponse, exactly as in production. Only the socket pair is wrapped, so every message's bytes are copied
 * into the recording on their way out (requests) and in (responses). Sessions recorded: VERSION, FEATURE_CHECK,
 * CHECK, a DUMP with notify_scripts of the workload fixture in its own PID namespace (CRIU's NOTIFY messages and
 * ferry's answers), a RESTORE of that dump (more NOTIFYs and the restored pid), a RESTORE from an empty directory
 * (cr_errno / cr_errmsg) and CPUINFO_DUMP.
 *
 * The requests carry descriptor numbers and a pid of the recording process; nothing else host-specific (ferry sends
 * descriptors, not paths). A dev tool, not part of ferry's API: it prints a summary and sets the exit status.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createImageDir, CriuClient, decodeResponse, isFerryError, type NotifyScript } from '@ferry/core';
import {
  decodeRequest,
  nativeSocketPair,
  RECORDING_FORMAT,
  startWorkloadInPidNamespace,
  teeSocketPair,
  waitForCounter,
  type RecordedMessage,
  type Recording,
} from '@ferry/core/testing';

interface RecordOptions {
  outDir: string;
  criuPath?: string;
}

/** Runs every session against the real CRIU and writes one JSON file per session into outDir. */
export async function recordSwrkSessions(options: RecordOptions): Promise<Recording[]> {
  const outDir = resolve(options.outDir);
  mkdirSync(outDir, { recursive: true });
  const scratch = mkdtempSync(join(tmpdir(), 'ferry-record-swrk-'));
  const recordings: Recording[] = [];
  let criuVersion = 'unknown';
  const stopLater: (() => void)[] = [];

  const session = async (name: string, description: string, body: (criu: CriuClient) => Promise<void>) => {
    const messages: RecordedMessage[] = [];
    const criu = new CriuClient({ criuPath: options.criuPath ?? 'criu', socketPair: teeSocketPair(nativeSocketPair, messages) });
    await body(criu);
    // Every message must be one ferry's codec reads back; a recording it cannot read is no fixture.
    for (const m of messages) (m.direction === 'request' ? decodeRequest : decodeResponse)(Buffer.from(m.hex, 'hex'));
    recordings.push({
      format: RECORDING_FORMAT,
      session: name,
      description,
      criuVersion,
      kernel: release(),
      recordedAt: new Date().toISOString(),
      messages,
    });
  };

  try {
    await session('version', 'VERSION: CRIU reports its version', async (criu) => {
      criuVersion = (await criu.version()).text;
    });
    await session('feature-check', 'FEATURE_CHECK of mem_track, lazy_pages, pidfd_store', async (criu) => {
      await criu.features();
    });
    await session('check', 'CHECK (`criu check` over RPC)', async (criu) => {
      const dir = createImageDir(join(scratch, 'check'));
      const { ok } = await criu.check(dir);
      if (!ok) throw new Error('criu check failed; record on a host where it passes');
    });

    const stateFile = join(scratch, 'state');
    const workload = await startWorkloadInPidNamespace({ stateFile, memMib: 1 });
    stopLater.push(() => workload.stop());
    await waitForCounter(stateFile, 2);
    const images = createImageDir(join(scratch, 'images'));
    const dumpScripts: NotifyScript[] = [];
    await session('dump', 'DUMP with notify_scripts of the workload fixture (init of its own PID namespace, 1 MiB)', async (criu) => {
      await criu.dump({ pid: workload.pid, imagesDir: images }, { onNotify: (script) => void dumpScripts.push(script) });
    });
    const restoreScripts: NotifyScript[] = [];
    await session('restore', 'RESTORE of that dump with notify_scripts; the restored tree is killed afterwards', async (criu) => {
      const restored = await criu.restore({ imagesDir: images }, { onNotify: (script) => void restoreScripts.push(script) });
      stopLater.push(() => killQuietly(restored.pid));
    });
    await session('restore-failed', 'RESTORE from an empty image directory: CRIU fails; cr_errmsg is the first error CRIU logged', async (criu) => {
      const empty = createImageDir(join(scratch, 'empty'));
      try {
        const restored = await criu.restore({ imagesDir: empty });
        killQuietly(restored.pid);
      } catch (err) {
        if (isFerryError(err, 'ERR_CRIU_RESTORE_FAILED')) return;
        throw err;
      }
      throw new Error('restore from an empty directory succeeded');
    });
    await session('cpuinfo-dump', 'CPUINFO_DUMP (writes cpuinfo.img)', async (criu) => {
      await criu.cpuinfoDump(createImageDir(join(scratch, 'cpuinfo')));
    });
    // VERSION ran first, before the version was known: label it too.
    for (const r of recordings) r.criuVersion = criuVersion;
    for (const r of recordings) writeFileSync(join(outDir, `${r.session}.json`), `${JSON.stringify(r, null, 2)}\n`);
    return recordings;
  } finally {
    for (const stop of stopLater) stop();
    rmSync(scratch, { recursive: true, force: true });
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    /* gone */
  }
}

async function main(argv: string[]): Promise<void> {
  const outDir = argv[0];
  if (!outDir || argv.length > 1) {
    process.stderr.write('usage: node tools/dist/record-swrk.js OUTDIR\n');
    process.exitCode = 2;
    return;
  }
  try {
    const recordings = await recordSwrkSessions({ outDir });
    for (const r of recordings) {
      const bytes = r.messages.reduce((sum, m) => sum + m.hex.length / 2, 0);
      const flow = r.messages.map((m) => `${m.direction === 'request' ? '>' : '<'}${m.type}`).join(' ');
      process.stdout.write(`${r.session}.json  ${r.messages.length} messages, ${bytes} bytes: ${flow}\n`);
    }
    process.stdout.write(`CRIU ${recordings[0]?.criuVersion}, kernel ${release()}; written to ${resolve(outDir)}\n`);
  } catch (err) {
    process.stderr.write(`record-swrk: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  }
}

if (require.main === module) void main(process.argv.slice(2));
