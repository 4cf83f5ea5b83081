/**
 * The habits operators expect from a CLI, on the built one (`tsc -b` first): --version with CRIU's and the agent
 * protocol's versions, shell completion, and a `ps` that is quiet about runtimes that are installed but not running.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ferry, ferryOk } from './testing/run-ferry';

jest.setTimeout(60_000);

const criuVersion = execFileSync('criu', ['--version'], { encoding: 'utf8' }).match(/Version: (\S+)/)?.[1];

it('--version names ferry, the CRIU in use and the agent protocol', async () => {
  const run = await ferryOk('--version');
  expect(run.stdout).toMatch(/^ferry \d+\.\d+\.\d+\n/);
  expect(run.stdout).toContain(`criu            ${criuVersion}`);
  expect(run.stdout).toMatch(/agent protocol  \d+/);
  const json = JSON.parse((await ferryOk('--version', '--json')).stdout) as { ferry: string; criu: { version: string }; agentProtocol: number };
  expect(json.criu.version).toBe(criuVersion);
  expect(json.agentProtocol).toBeGreaterThanOrEqual(1);
  expect((await ferryOk('version', '--json')).stdout).toBe((await ferryOk('--version', '--json')).stdout);
});

it('--version with a CRIU that is not there still prints ferry\'s and says what is missing', async () => {
  const run = await ferryOk('--version', '--criu', '/nonexistent/criu');
  expect(run.stdout).toMatch(/^ferry /);
  expect(run.stdout).toMatch(/criu +unknown: /);
});

it('completion prints a script, and the CLI completes commands, options and choices', async () => {
  expect((await ferryOk('completion')).stdout).toMatch(/ferry --get-yargs-completions/);
  const commands = (await ferryOk('--get-yargs-completions', 'ferry', '')).stdout.split('\n');
  expect(commands).toEqual(expect.arrayContaining(['migrate', 'checkpoint', 'restore', 'version']));
  expect((await ferryOk('--get-yargs-completions', 'ferry', 'checkpoint', '--')).stdout).toMatch(/--export/);
  expect((await ferryOk('--get-yargs-completions', 'ferry', 'restore', '--runtime', '')).stdout.split('\n')).toEqual(expect.arrayContaining(['runc', 'lxc', 'docker']));
});

describe('ps and a Docker that is installed but not running', () => {
  let dir: string;
  const saved = process.env.DOCKER_HOST;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ferry-ps-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    if (saved === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved;
  });

  // Provisioning installs docker.io without starting it: nothing listens on Docker's default socket.
  const defaultDaemon = existsSync('/var/run/docker.sock');
  if (defaultDaemon) console.warn('skipped: a dockerd listens on /var/run/docker.sock here');
  (defaultDaemon ? it.skip : it)('is quiet by default, names it with -v/--all, and doctor still reports it', async () => {
    delete process.env.DOCKER_HOST;
    const run = await ferryOk('ps');
    expect(run.stderr).not.toMatch(/docker/);
    for (const flag of ['-v', '--all']) expect((await ferryOk('ps', flag)).stderr).toMatch(/^note: docker is not running here: /m);
    const json = JSON.parse((await ferryOk('ps', '--json')).stdout) as { problems: string[]; unavailable: { runtime: string }[] };
    expect(json.problems).toEqual([]);
    expect(json.unavailable.map((u) => u.runtime)).toContain('docker');
    const doctor = JSON.parse((await ferry('doctor', '--json')).stdout) as { runtimes: { name: string; usable: boolean }[] };
    expect(doctor.runtimes.find((r) => r.name === 'docker')).toMatchObject({ usable: false });
  });

  it('warns when the daemon the operator named (DOCKER_HOST) cannot be reached', async () => {
    process.env.DOCKER_HOST = `unix://${join(dir, 'none.sock')}`;
    expect((await ferryOk('ps')).stderr).toMatch(/^warning: docker: /m);
  });
});
