/**
 * The two sandbox hosts (scripts/sandbox-hosts.sh) from the e2e tests: bring them up, run commands inside a host,
 * run `ferry` there and watch its events.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
const SCRIPT = join(ROOT, 'scripts', 'sandbox-hosts.sh');
// One sandbox per jest worker: test files run in parallel, and each one brings its sandbox up and down.
// FERRY_E2E_PREFIX (letters, at most 8) keeps the sandboxes of two checkouts tested at once apart.
const WORKER = process.env.JEST_WORKER_ID ?? '0';
const PREFIX = /^[a-z]{1,8}$/.test(process.env.FERRY_E2E_PREFIX ?? '') ? (process.env.FERRY_E2E_PREFIX as string) : 'ferrye2e';
export const SANDBOX_DIR = `/run/ferry-sandbox-${PREFIX}${WORKER}`;
export const HOSTS_FILE = join(SANDBOX_DIR, 'hosts.yaml');
export const SANDBOX_NAME = `${PREFIX}${WORKER}`;
export const LAN_NETNS = `/run/netns/${SANDBOX_NAME}-lan`;
export const UPLINK = `${SANDBOX_DIR}/lan.netns:br-lan`;
export const CONTAINER_CTL = join(ROOT, 'e2e', 'bin', 'container-ctl.js');
export const FAULT_BIN = join(ROOT, 'e2e', 'fault-bin');
/** Each host's own dockerd (when a test starts one: docker-hosts.ts) listens here, in the host's private /run/ferry. */
export const HOST_DOCKER_HOST = 'unix:///run/ferry/docker.sock';

const env = { ...process.env, FERRY_SANDBOX_DIR: SANDBOX_DIR, FERRY_SANDBOX_NAME: SANDBOX_NAME };

export function sandbox(...args: string[]): string {
  const r = spawnSync('bash', [SCRIPT, ...args], { env, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`sandbox-hosts.sh ${args.join(' ')} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** argv inside host h1 or h2, with the LAN uplink in its environment (as sshd gives it to the agent). */
export function onHost(host: 'h1' | 'h2', argv: string[], timeoutMs = 120_000): Run {
  const r = spawnSync('bash', [SCRIPT, 'exec', host, '--', 'env', `FERRY_NETNS_UPLINK=${UPLINK}`, `DOCKER_HOST=${HOST_DOCKER_HOST}`, ...argv], { env, encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function ctl<T = Record<string, unknown>>(host: 'h1' | 'h2', ...args: string[]): T {
  const r = onHost(host, ['node', CONTAINER_CTL, ...args]);
  if (r.status !== 0) throw new Error(`container-ctl ${args.join(' ')} on ${host} failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as T;
}

export interface FerryRun extends Run {
  events: Record<string, unknown>[];
  report?: Record<string, unknown>;
  error?: { code: string; message: string; hint?: string };
}

/**
 * `ferry ARGS --json` on host h1; `onEvent` sees each JSON event as it arrives (fault tests act on phases);
 * `extraEnv` is set for ferry alone (FERRY_FAULT).
 */
export function ferryOn(host: 'h1' | 'h2', args: string[], onEvent?: (e: Record<string, unknown>) => void, extraEnv: Record<string, string> = {}): Promise<FerryRun> {
  return new Promise((resolvePromise) => {
    const vars = Object.entries(extraEnv).map(([k, v]) => `${k}=${v}`);
    const child = spawn('bash', [SCRIPT, 'exec', host, '--', 'env', `FERRY_NETNS_UPLINK=${UPLINK}`, `DOCKER_HOST=${HOST_DOCKER_HOST}`, ...vars, 'ferry', ...args, '--json'], { env });
    let stdout = '';
    let stderr = '';
    const events: Record<string, unknown>[] = [];
    let pending = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      pending += c;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        try {
          const event = JSON.parse(line) as Record<string, unknown>;
          events.push(event);
          onEvent?.(event);
        } catch {
          /* not an event line */
        }
      }
    });
    child.on('close', (status) => {
      const parse = jsonLines;
      const report = parse(stdout).find((o) => o.event === 'report')?.report as Record<string, unknown> | undefined;
      const error = [...parse(stdout), ...events].find((o) => o.event === 'error')?.error as FerryRun['error'];
      resolvePromise({ status, stdout, stderr, events, report, error });
    });
  });
}

/** The JSON objects of a --json output, one per line; pretty-printed documents (ps, replicas) are not events. */
export function jsonLines(text: string): Record<string, unknown>[] {
  return text.split('\n').flatMap((l) => {
    try {
      return l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

export function sandboxEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of readFileSync(join(SANDBOX_DIR, 'env'), 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line);
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}
