/**
 * runc containers running fixtures/slow-start.c (a service that builds a large table for a while before it answers),
 * and its probe, for the fast-start tests and benchmark.
 *
 *   const c = await startSlowStartContainer({ tableMib: 64, initMs: 1500 });   // booted: it answers
 *   const a = await queryService(c.netnsPath, c.address, c.port, 'sum');     // "sum HEX ok"
 *   await c.stop();                                                         // runc delete -f, netns, bundle
 *
 * prepareSlowStartContainer() makes the network namespace and bundle without running it, so a caller can start its
 * clock and a probe first. The rootfs is the busybox test rootfs (buildTestRootfs) plus /usr/bin/slow-start, cached
 * by content. The container has no /state bind mount: what it computed is checked over TCP only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, deleteNetns, netnsPath } from '../runtime/runc-netns';
import { buildFixture } from './fixtures';
import { buildTestRootfs, hostTool, netnsTools, removeUnlessMounted, runCommand, testContainerConfig, TEST_CONTAINER_ADDRESS, TEST_CONTAINER_PORT, type TestRuncBundle } from './runc-container';

export interface SlowStartOptions {
  /** Size of the table the service builds, MiB (default 64). */
  tableMib?: number;
  /** How long it keeps building before it listens, ms (default 1500). */
  initMs?: number;
  port?: number;
}

export function slowStartArgs(options: SlowStartOptions = {}): string[] {
  return [
    '--table-mib',
    String(options.tableMib ?? 64),
    '--init-ms',
    String(options.initMs ?? 1500),
    '--port',
    String(options.port ?? TEST_CONTAINER_PORT),
  ];
}

/** The compiled fixture on the host (static: it also serves as the probe, under nsenter). */
export function slowStartBinary(): string {
  return buildFixture('slow-start');
}

/** The test rootfs plus /usr/bin/slow-start; built once per content, renamed into place (parallel workers). */
export function buildSlowStartRootfs(): string {
  const base = buildTestRootfs();
  const binary = slowStartBinary();
  const hash = createHash('sha256').update(base).update(readFileSync(binary)).digest('hex').slice(0, 16);
  const rootfs = `/tmp/ferry-rootfs-slow-start-${hash}`;
  if (existsSync(join(rootfs, 'usr', 'bin', 'slow-start'))) return rootfs;
  const tmp = `${rootfs}.${process.pid}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  cpSync(base, tmp, { recursive: true, verbatimSymlinks: true });
  copyFileSync(binary, join(tmp, 'usr', 'bin', 'slow-start'));
  chmodSync(join(tmp, 'usr', 'bin', 'slow-start'), 0o755);
  try {
    renameSync(tmp, rootfs);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another worker won the race
  }
  return rootfs;
}

export interface SlowStartContainerOptions extends SlowStartOptions {
  /** Default: ferry-s-RANDOM. */
  name?: string;
  /** Address of eth0 in the container's netns, CIDR (default 10.77.0.2/24). */
  address?: string;
}

export interface SlowStartContainer extends TestRuncBundle {
  /** `runc run -d` (stdio on /dev/null); resolves when runc returns, long before the service answers. */
  run(): Promise<void>;
  /** runc delete -f, the netns deleted (unless keepNetns), the bundle removed; never throws. */
  stop(options?: { keepNetns?: boolean }): Promise<void>;
}

/** The netns (with eth0 and its address) and the bundle of a slow-start container, not yet running. */
export async function prepareSlowStartContainer(options: SlowStartContainerOptions = {}): Promise<SlowStartContainer> {
  const name = options.name ?? `ferry-s-${Math.random().toString(36).slice(2, 8)}`;
  const rootfs = buildSlowStartRootfs();
  const bundle = mkdtempSync(join(tmpdir(), `ferry-bundle-${name}-`));
  const netnsName = `ferry-ct-${name}`;
  const address = options.address ?? TEST_CONTAINER_ADDRESS;
  const port = options.port ?? TEST_CONTAINER_PORT;
  const args = ['/usr/bin/slow-start', ...slowStartArgs({ ...options, port })];
  const config = testContainerConfig({ name, rootfs, stateDir: bundle, netnsPath: netnsPath(netnsName), args });
  config.mounts = (config.mounts ?? []).filter((m) => m.destination !== '/state');
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config, null, 2));
  const tools = netnsTools();
  const runc = hostTool('runc');
  const container: SlowStartContainer = {
    name,
    bundle,
    config,
    netnsName,
    netnsPath: netnsPath(netnsName),
    address: address.split('/')[0]!,
    port,
    run: async () => {
      await runCommand(runc, ['--log', join(bundle, 'runc.log'), '--log-format', 'json', 'run', '--detach', '--bundle', bundle, name], { stdio: ['ignore', 'ignore', 'ignore'] });
    },
    pid: async () => {
      const { stdout } = await runCommand(runc, ['state', name]);
      return (JSON.parse(stdout) as { pid: number }).pid;
    },
    stop: async (stopOptions = {}) => {
      await runCommand(runc, ['delete', '--force', name]).catch(() => undefined);
      if (!stopOptions.keepNetns) await deleteNetns(tools, netnsName).catch(() => undefined);
      removeUnlessMounted(bundle);
    },
  };
  try {
    await createNetns(tools, netnsName, [{ ifname: 'eth0', addresses: [{ ifname: 'eth0', family: 'inet', address }] }]);
  } catch (err) {
    await container.stop();
    throw err;
  }
  return container;
}

/** prepareSlowStartContainer + run, then waits until the service answers (its init time plus a little). */
export async function startSlowStartContainer(
  options: SlowStartContainerOptions & { timeoutMs?: number } = {},
): Promise<SlowStartContainer & { bootMs: number }> {
  const container = await prepareSlowStartContainer(options);
  try {
    const probe = startServiceProbe(container.netnsPath, container.address, container.port, { timeoutMs: options.timeoutMs ?? 60_000 });
    await probe.ready;
    const started = Date.now();
    await container.run();
    const answer = await probe.answer;
    if (answer.exitCode !== 0) throw new Error(`the slow-start service did not answer: ${answer.output}`);
    return Object.assign(container, { bootMs: Date.now() - started });
  } catch (err) {
    let log = '';
    try {
      log = readFileSync(join(container.bundle, 'runc.log'), 'utf8');
    } catch {
      /* none */
    }
    await container.stop();
    throw new Error(`could not start slow-start container ${container.name}: ${(err as Error).message}${log ? `\nrunc log:\n${log}` : ''}`);
  }
}

export interface ProbeAnswer {
  /** The service's answer line ("value I PASSES HEX", "sum HEX ok", ...); empty on timeout. */
  reply: string;
  attempts: number;
  /** Measured by the probe from its first connect attempt to the answer. */
  elapsedMs: number;
  /** With verify and a `get` query: the answered entry matches its definition. */
  verified?: boolean;
  exitCode: number | null;
  /** Everything the probe printed, for error messages. */
  output: string;
  /** Date.now() when the answer reached this process. */
  answeredAt: number;
}

export interface ServiceProbe {
  readonly process: ChildProcess;
  /** Resolves once the probe runs in the namespace (it printed "probing"). */
  ready: Promise<void>;
  /** Resolves when the probe exits: answered, timed out or failed (see exitCode). */
  answer: Promise<ProbeAnswer>;
  stop(): void;
}

/**
 * The fixture's probe under `nsenter --net=NETNS`: connects to ADDR:PORT until the service answers `query`
 * (default a random `get`, verified against the table's definition).
 */
export function startServiceProbe(
  netns: string,
  address: string,
  port: number,
  options: { query?: string; verify?: boolean; timeoutMs?: number } = {},
): ServiceProbe {
  const query = options.query ?? `get ${Math.floor(Math.random() * 1_000_000)}`;
  const verify = options.verify ?? query.startsWith('get ');
  const args = [`--net=${netns}`, slowStartBinary(), '--probe', `${address}:${port}`, '--query', query, '--timeout-ms', String(options.timeoutMs ?? 30_000)];
  if (verify) args.push('--verify');
  const child = spawn(hostTool('nsenter'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let answeredAt = 0;
  let markReady: () => void = () => undefined;
  let failReady: (err: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    failReady = reject;
  });
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    out += chunk;
    if (out.startsWith('probing\n')) markReady();
    if (!answeredAt && /elapsed_ms=/.test(out)) answeredAt = Date.now();
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const answer = new Promise<ProbeAnswer>((resolve, reject) => {
    child.on('error', (err) => {
      failReady(err);
      reject(err);
    });
    child.on('close', (exitCode) => {
      failReady(new Error(`the probe exited before it ran: ${out.trim()}`));
      const lines = out.split('\n');
      const stats = lines.find((l) => /^(attempts|timeout)/.test(l)) ?? '';
      const statsAt = lines.indexOf(stats);
      const reply = stats.startsWith('attempts') && statsAt > 0 ? lines[statsAt - 1]! : '';
      const num = (key: string) => Number(new RegExp(`${key}=(\\d+)`).exec(stats)?.[1] ?? NaN);
      const verdict = /verified=(\w+)/.exec(stats)?.[1];
      resolve({
        reply,
        attempts: num('attempts'),
        elapsedMs: num('elapsed_ms'),
        ...(verdict === undefined ? {} : { verified: verdict === 'ok' }),
        exitCode,
        output: out,
        answeredAt: answeredAt || Date.now(),
      });
    });
  });
  void ready.catch(() => undefined); // a probe that dies early reports through `answer`
  return {
    process: child,
    ready,
    answer,
    stop: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** One request to the service in `netns`; throws when it does not answer within timeoutMs. */
export async function queryService(netns: string, address: string, port: number, query: string, timeoutMs = 10_000): Promise<ProbeAnswer> {
  const probe = startServiceProbe(netns, address, port, { query, timeoutMs });
  const answer = await probe.answer;
  if (answer.exitCode !== 0 && answer.verified === undefined) {
    throw new Error(`no answer to "${query}" from ${address}:${port} in ${netns}: ${answer.output.trim()}`);
  }
  return answer;
}
