/**
 * The built CLI as a user runs it, for the CLI's integration tests (`npx tsc -b` first).
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';

const FERRY = join(__dirname, '..', '..', 'bin', 'ferry.js');

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI; the environment is the test's, minus what would change where ferry puts containers. */
export function ferry(...args: string[]): Promise<Run> {
  const env = { ...process.env };
  delete env.FERRY_NETNS_UPLINK;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** Runs ferry and expects success; the failure message shows what ferry printed. */
export async function ferryOk(...args: string[]): Promise<Run> {
  const run = await ferry(...args);
  if (run.status !== 0) throw new Error(`ferry ${args.join(' ')} exited ${run.status}\nstdout: ${run.stdout}\nstderr: ${run.stderr}`);
  return run;
}

/** The one JSON object a --json command prints on stdout. */
export function jsonOutput<T = Record<string, any>>(run: Run): T {
  const lines = run.stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one JSON line, got ${lines.length}:\n${run.stdout}`);
  return JSON.parse(lines[0]!) as T;
}
