import type { CommandModule } from 'yargs';
import { DEFAULT_DOCKER_HOST, probeHost, type HostFacts } from '@ferry/core';
import { criuClient, runtimeRegistry } from '../host-context';
import { EXIT } from '../exit-codes';

const KDAT_ROWS: Record<HostFacts['criuKdatCache'], string> = {
  tmpfs: 'yes (CRIU keeps it: /run is tmpfs)',
  kept: 'yes (ferry keeps it for this boot: /run is not tmpfs; a CRIU run by another tool after a reboot, before ferry runs, may read the earlier boot\'s)',
  none: "no: /run is not tmpfs and ferry has not made it this boot (it does when it next greets another host); until then every CRIU start probes the kernel (~70 ms, twice in a move's freeze)",
};

export interface DoctorArgs {
  json: boolean;
  criu: string;
}

export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  describe: 'Show what this host can do: CRIU, kernel features, cgroups, runtimes, migration strategies',
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' })
      .option('criu', { type: 'string', default: 'criu', describe: 'CRIU binary to use' }),
  handler: async (args) => {
    const facts = await probeHost({ criu: criuClient(args.criu), searchPath: process.env.PATH ?? '' });
    // Docker's row from the adapter, not from the docker CLI in PATH (that may be another client, and it cannot
    // tell what ferry needs: a local socket, root, a daemon with --experimental).
    const docker = runtimeRegistry().adapters.find((a) => a.name === 'docker');
    if (docker) {
      const a = await docker.availability();
      const socket = process.env.DOCKER_HOST || DEFAULT_DOCKER_HOST;
      facts.runtimes = facts.runtimes.map((r) =>
        r.name === 'docker' ? { name: 'docker', present: r.present || a.usable, usable: a.usable, path: socket, version: a.version, reason: a.reason } : r,
      );
    }
    process.stdout.write(args.json ? `${JSON.stringify(facts, null, 2)}\n` : renderDoctor(facts));
    process.exitCode = facts.canCheckpoint ? EXIT.ok : EXIT.failure;
  },
};

const yes = (ok: boolean | undefined) => (ok ? 'yes' : 'no');

export function renderDoctor(f: HostFacts): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`  ${label.padEnd(30)} ${value}`);
  lines.push(`ferry doctor: ${f.hostname}`);
  lines.push('host');
  row('kernel', f.kernel);
  row('page size', `${f.pageSizeBytes} bytes`);
  row('running as root', yes(f.isRoot));
  row('cgroups', `${f.cgroups.layout}${f.cgroups.freezer ? `, freezer ${f.cgroups.freezer.kind} at ${f.cgroups.freezer.mountpoint}` : ', no freezer'}`);
  row('fs.pipe-max-size', f.pipeMaxSizeBytes === undefined ? 'unknown' : String(f.pipeMaxSizeBytes));
  row('transparent huge pages', thpText(f.transparentHugePages));
  lines.push('criu');
  row('path', f.criu.path ?? 'not found');
  row('version', f.criu.version ? `${f.criu.version.text}${f.criu.versionOk ? '' : ' (too old: ferry needs >= 4.2)'}` : 'unknown');
  row('criu check', f.criu.check.ok ? 'ok' : `FAILED${f.criu.check.detail ? `: ${f.criu.check.detail}` : ''}`);
  row('kernel-probe cache', KDAT_ROWS[f.criuKdatCache]);
  row('memory tracking', f.criu.features.memTrack ? 'yes' : 'no (no soft-dirty bits in this kernel)');
  row('lazy pages', yes(f.criu.features.lazyPages));
  row('pidfd store', yes(f.criu.features.pidfdStore));
  for (const [name, ok] of Object.entries(f.criu.kernelFeatures)) row(`feature ${name}`, yes(ok));
  if (f.criu.error) row('error', f.criu.error);
  lines.push('runtimes');
  for (const r of f.runtimes) row(r.name, r.usable ? `${r.version ?? 'yes'} (${r.path})` : `no: ${r.reason ?? 'unusable'}`);
  lines.push('migration strategies');
  for (const s of f.strategies) row(s.name, s.available ? 'available' : `unavailable: ${s.reason}`);
  lines.push(f.canCheckpoint ? 'verdict: this host can checkpoint and restore' : 'verdict: this host CANNOT checkpoint and restore');
  return `${lines.join('\n')}\n`;
}

/** The THP row: restores into fresh memory fault once per 4 KiB page unless THP is "always" (measured in docs/benchmarks.md). */
export function thpText(mode: string | undefined): string {
  if (mode === undefined) return 'unknown';
  if (mode === 'always') return 'always';
  return `${mode} (a restore faults the container's memory in 4 KiB pages; "always" made CRIU's restore several times faster here: docs/hash-precopy.md)`;
}
