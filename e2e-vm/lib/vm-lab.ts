/**
 * The two VMs of the two-VM suite, from the tests: bring them up and down, run commands in a VM, run `ferry --json`
 * there and collect its events and report. Two labs give the VMs, with one interface (up, down, guests,
 * exec NAME -- ARGV): scripts/vm/lab.sh boots two qemu guests itself (`npm run test:vm`), scripts/vagrant/lab.sh has
 * Vagrant bring them up from the project's Vagrantfile (`npm run test:vagrant`, FERRY_VM_LAB=vagrant).
 */
import { spawn, spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
export const LAB_KIND = process.env.FERRY_VM_LAB === 'vagrant' ? 'vagrant' : 'qemu';
const LAB = join(ROOT, 'scripts', LAB_KIND === 'vagrant' ? 'vagrant' : 'vm', 'lab.sh');
/** A VM's name, as the lab and ferry's hosts.yaml in the VMs know it (g1 and g2, or ferry1 and ferry2). */
export type Guest = string;
/** Where the VMs hold this checkout's ferry (scripts/vm/app-disk.sh: a disk, or a directory Vagrant synced). */
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

/** The two VMs: the source of every move, then its destination. */
export function guests(): [Guest, Guest] {
  const names = spawnSync('bash', [LAB, 'guests'], { encoding: 'utf8' }).stdout.trim().split(/\s+/);
  if (names.length !== 2) throw new Error(`${LAB} guests printed ${JSON.stringify(names)}`);
  return [names[0]!, names[1]!];
}

/** argv as root in a guest (over SSH; the lab quotes every argument for the remote shell). */
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
  /** The event at which `killAt` had the ferry process killed (kill -9 by its pid in the guest). */
  killedAt?: Record<string, unknown>;
}

export interface FerryOptions {
  timeoutMs?: number;
  /** kill -9 the ferry process in the guest at the first event for which this returns true. */
  killAt?: (event: Record<string, unknown>) => boolean;
}

function jsonObjects(text: string): Record<string, unknown>[] {
  return text.split('\n').flatMap((l) => {
    try {
      return l.startsWith('{') ? [JSON.parse(l) as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/** `ferry ARGS --json` in a guest. */
export function ferryIn(guest: Guest, args: string[], options: FerryOptions = {}): Promise<FerryRun> {
  const { timeoutMs = 600_000, killAt } = options;
  return new Promise((resolvePromise) => {
    // The shell announces its pid, then becomes ferry: that pid is the ferry process a test may kill.
    const child = spawn('bash', [LAB, 'exec', guest, '--', 'sh', '-c', 'echo "ferry-pid $$" >&2; exec ferry "$@"', 'sh', ...args, '--json']);
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    let stdout = '';
    let stderr = '';
    let pid: string | undefined;
    let killedAt: Record<string, unknown> | undefined;
    let seen = 0;
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      pid ??= /^ferry-pid (\d+)$/m.exec(stderr)?.[1];
      if (!killAt || killedAt || !pid) return;
      const complete = stderr.slice(0, stderr.lastIndexOf('\n') + 1);
      const events = jsonObjects(complete);
      for (const event of events.slice(seen)) {
        if (!killAt(event)) continue;
        killedAt = event;
        const kill = onGuest(guest, ['kill', '-9', pid]);
        if (kill.status !== 0) process.stderr.write(`kill -9 ${pid} in ${guest} failed: ${kill.stderr}\n`);
        break;
      }
      seen = events.length;
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      const events = jsonObjects(stderr);
      const out = jsonObjects(stdout);
      const report = out.find((o) => o.event === 'report')?.report as Record<string, unknown> | undefined;
      const error = [...out, ...events].find((o) => o.event === 'error')?.error as FerryRun['error'];
      resolvePromise({ status, stdout, stderr, events, report, error, killedAt });
    });
  });
}
