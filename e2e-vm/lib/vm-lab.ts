/**
 * The two qemu guests of scripts/vm/lab.sh, from the tests: bring them up and down, run commands in a guest, run
 * `ferry --json` there and collect its events and report.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
const LAB = join(ROOT, 'scripts', 'vm', 'lab.sh');
export type Guest = 'g1' | 'g2';
/** Where the guests mount this checkout's ferry (scripts/vm/app-disk.sh). */
export const GUEST_APP = '/opt/ferry/app';
const CONTAINER_CTL = `${GUEST_APP}/e2e/bin/container-ctl.js`;

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function lab(command: 'up' | 'down', timeoutMs: number): Run {
  const r = spawnSync('bash', [LAB, command], { encoding: 'utf8', timeout: timeoutMs, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** argv as root in a guest (over SSH; lab.sh quotes every argument for the remote shell). */
export function onGuest(guest: Guest, argv: string[], timeoutMs = 180_000): Run {
  const r = spawnSync('bash', [LAB, 'exec', guest, '--', ...argv], { encoding: 'utf8', timeout: timeoutMs });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

export function ctl<T = Record<string, unknown>>(guest: Guest, ...args: string[]): T {
  const r = onGuest(guest, ['node', CONTAINER_CTL, ...args]);
  if (r.status !== 0) throw new Error(`container-ctl ${args.join(' ')} in ${guest} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as T;
}

export interface FerryRun extends Run {
  events: Record<string, unknown>[];
  report?: Record<string, unknown>;
  error?: { code: string; message: string; hint?: string };
}

/** `ferry ARGS --json` in a guest. */
export function ferryIn(guest: Guest, args: string[], timeoutMs = 600_000): Promise<FerryRun> {
  return new Promise((resolvePromise) => {
    const child = spawn('bash', [LAB, 'exec', guest, '--', 'ferry', ...args, '--json']);
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('close', (status) => {
      clearTimeout(timer);
      const objects = (text: string) =>
        text.split('\n').flatMap((l) => {
          try {
            return l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [];
          } catch {
            return [];
          }
        });
      const events = objects(stderr);
      const out = objects(stdout);
      const report = out.find((o) => o.event === 'report')?.report as Record<string, unknown> | undefined;
      const error = [...out, ...events].find((o) => o.event === 'error')?.error as FerryRun['error'];
      resolvePromise({ status, stdout, stderr, events, report, error });
    });
  });
}
