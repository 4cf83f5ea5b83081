/**
 * The jest side of the application matrix, shared by the runtime files (runc.apps.ts, lxc.apps.ts, docker.apps.ts):
 * the sandbox up, the lab's CRIU rlimit shim where this machine needs it, the Docker lab for Docker rows
 * (docker-lab.ts), one test per application (trial.js moveApp), each row
 * recorded for the matrix (FERRY_APPS_RESULTS). For each: the move succeeds with the stock configuration, the load
 * tool saw no connection reset or error across the whole freeze, and the application's own checks find every
 * acknowledged write.
 */
import { SANDBOX_DIR, SANDBOX_NAME, sandbox } from '../lib/sandbox';
import { dockerLabUp, type DockerLab } from './docker-lab';

/* eslint-disable @typescript-eslint/no-require-imports -- plain JavaScript shared with the benchmark (bench/) */
const { moveApp } = require('./trial');
const { sandboxNamed } = require('./sandbox-access');
const { recordRow } = require('./matrix');
const { installCriuShim } = require('./lab/criu-shim');
/* eslint-enable @typescript-eslint/no-require-imports */

export function appsSuite(runtime: 'runc' | 'lxc' | 'docker', names: string[], firstAddress: number): void {
  // A first run builds each application's rootfs (minutes; cached in /var/cache/ferry/apps afterwards).
  jest.setTimeout(20 * 60_000);
  const sb = sandboxNamed(SANDBOX_NAME, SANDBOX_DIR);
  let shim: { installed: boolean; reason: string };
  let dockerLab: DockerLab | undefined;
  beforeAll(async () => {
    sandbox('up');
    if (runtime === 'docker') dockerLab = await dockerLabUp();
    shim = installCriuShim(sb);
    // ferry's preflight refuses a task of another user when root lacks CAP_SYS_RESOURCE (rlimit-access.ts); the
    // shimmed CRIU reads those rlimits from /proc, which this variable tells it (the CLI on h1 inherits it).
    if (shim.installed) process.env.FERRY_CRIU_READS_PROC_LIMITS = '1';
    process.stderr.write(`CRIU rlimit shim: ${shim.installed ? 'installed' : 'not needed'} (${shim.reason})\n`);
  });
  afterAll(async () => {
    await dockerLab?.down();
    sandbox('down');
  });

  test.each(names.map((n, i) => [n, i]))(`%s (${runtime}) moves under its own load: no reset, every acknowledged write present`, async (name, index) => {
    const row = await moveApp(sb, name as string, {
      runtime,
      address: `10.77.0.${firstAddress + (index as number)}/24`,
      log: (line: string) => process.stderr.write(`${line}\n`),
    });
    recordRow({ ...row, criuShim: shim.installed });
    if (row.error) throw new Error(`ferry migrate ${name}: ${row.error.code}: ${row.error.message}\nhint: ${row.error.hint}`);
    expect(row.result).toBe('ok');
    expect(row.dataIntact).toBe(true);
    expect(row.strategy).toBeTruthy();
  });
}
