/**
 * Bad input, across every command (#14): each case gets its exit code, an error on one line ("error CODE: ..."), a
 * hint on the next, and never a stack trace; usage errors with --json are one JSON line too. The built CLI (`tsc -b`
 * first) runs with a scratch HOME and state directory, so nothing here reads or changes the machine's own; no case
 * gets as far as touching a container (names that do not exist, hosts that do not resolve or do not answer).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

jest.setTimeout(900_000);

const FERRY = join(__dirname, '..', 'bin', 'ferry.js');
let home: string;
let state: string;

interface Case {
  args: string[];
  exit: number;
  code: string;
  /** Part of the message, when it matters which check spoke. */
  says?: RegExp;
  /** A state directory prepared for this case (files relative to it). */
  files?: Record<string, string>;
}

const MISSING = 'ferry-no-such-ct';
const NOWHERE = 'no-such-host.invalid';
const long = 'a'.repeat(5000);

/** Every command with what a careless or hostile user might type. */
const CASES: Case[] = [
  // The command line itself.
  { args: [], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /Name a command/ },
  { args: ['frobnicate'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrat', 'x', '--to', 'h2'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['--no-such-flag'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // doctor, ps
  { args: ['doctor', '--no-such-flag'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['doctor', 'extra'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['doctor', '--criu'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['ps', 'extra'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['ps', '--lxcpath'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['ps', '--bogus'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // checkpoint
  { args: ['checkpoint'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['checkpoint', MISSING], exit: 5, code: 'ERR_RUNTIME_NOT_FOUND' },
  { args: ['checkpoint', MISSING, '--dir', ''], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--dir is empty/ },
  { args: ['checkpoint', MISSING, '--dir', '@STATE/full'], exit: 3, code: 'ERR_PRECHECK_UNSAFE_PATH', says: /not empty/, files: { 'full/pages-1.img': 'x' } },
  { args: ['checkpoint', MISSING, '--dir', '@STATE/link'], exit: 3, code: 'ERR_PRECHECK_UNSAFE_PATH', says: /symlink/, files: { 'link': '@symlink:/etc' } },
  { args: ['checkpoint', MISSING, '--dir', '@STATE/file'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /not a directory/, files: { 'file': 'x' } },
  { args: ['checkpoint', long], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /5000 characters/ },
  { args: ['checkpoint', '../../etc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['checkpoint', 'bogus:web'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /unknown runtime/ },
  { args: ['checkpoint', 'runc:'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['checkpoint', MISSING, '--dir', 'a', '--dir', 'b'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /given 2 times/ },
  { args: ['checkpoint', MISSING, '--bogus'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // restore, start
  { args: ['restore'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['restore', '/nonexistent/images'], exit: 4, code: 'ERR_IMAGE_NOT_FOUND' },
  { args: ['restore', '@STATE/empty'], exit: 4, code: 'ERR_IMAGE_NOT_FOUND', files: { 'empty/.keep': '' } },
  { args: ['restore', '@STATE/empty', '--runtime', 'bogus'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', files: { 'empty/.keep': '' } },
  { args: ['restore', '@STATE/empty', '--name'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['start'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['start', '--from', '/nonexistent/images'], exit: 4, code: 'ERR_IMAGE_NOT_FOUND' },
  { args: ['start', '--from', '/nonexistent', '--count', 'abc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--count must be a number/ },
  { args: ['start', '--from', '/nonexistent', '--count', '0'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['start', '--from', '/nonexistent', '--runtime', 'lxc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // session
  { args: ['session'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['session', 'checkpoint'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['session', 'restore'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['session', 'bogus'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // snapshot
  { args: ['snapshot'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['snapshot', 'take'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['snapshot', 'take', MISSING, '--store', ''], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--store is empty/ },
  { args: ['snapshot', 'take', MISSING, '--store', '@STATE/snaps'], exit: 5, code: 'ERR_RUNTIME_NOT_FOUND' },
  { args: ['snapshot', 'ls', '../../etc', '--store', '@STATE/snaps'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['snapshot', 'ls'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['snapshot', 'revert', MISSING], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['snapshot', 'rm', MISSING], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['snapshot', 'rm', MISSING, 'latest', '--store', '@STATE/snaps'], exit: 4, code: 'ERR_IMAGE_NOT_FOUND' },
  { args: ['snapshot', 'take', long], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // migrate
  { args: ['migrate'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /Missing required argument: to/ },
  { args: ['migrate', MISSING, '--to'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', ''], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', 'a', '--to', 'b'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--to was given 2 times/ },
  { args: ['migrate', MISSING, '--to', '-oProxyCommand=touch /tmp/x'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /invalid host/ },
  { args: ['migrate', MISSING, '--to', '-oProxyCommand'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /cannot start with "-"/ },
  { args: ['migrate', MISSING, '--to', 'root@-x'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', 'h2:99999'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /port must be 1-65535/ },
  { args: ['migrate', MISSING, '--to', 'h2:abc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // --max-downtime and --bandwidth (#17): refused before any host is resolved or contacted.
  { args: ['migrate', MISSING, '--to', NOWHERE, '--max-downtime', 'soon'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--max-downtime "soon" is not a duration/ },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--max-downtime', '500'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /not a duration/ },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--max-downtime', '0ms'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /not a duration/ },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--max-downtime', '-1s'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--max-downtime'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--bandwidth', 'fast'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--bandwidth "fast"/ },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--bandwidth', '1K'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /at least 64 KiB\/s/ },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--bandwidth', '-5M'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--bandwidth', '5M', '--bandwidth', '6M'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /given 2 times/ },
  { args: ['migrate', MISSING, '--to', NOWHERE, '--dry-run'], exit: 5, code: 'ERR_RUNTIME_NOT_FOUND' },
  { args: ['clone', MISSING, '--to', NOWHERE, '--bandwidth', '10 parsecs'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--bandwidth/ },
  { args: ['drain', '--to', NOWHERE, '--max-downtime', 'never'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--max-downtime/ },
  { args: ['migrate', MISSING, '--to', 'a b'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', 'fe80::1'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /brackets/ },
  { args: ['migrate', MISSING, '--to', 'h2', '--strategy', 'teleport'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', 'h2', '--hosts-file', '/nonexistent.yaml'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /does not exist/ },
  { args: ['migrate', MISSING, '--to', 'h2', '--hosts-file', '@STATE'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /is a directory/ },
  { args: ['migrate', MISSING, '--to', 'h2', '--hosts-file', '@STATE/bad.yaml'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /not valid YAML/, files: { 'bad.yaml': 'hosts: [' } },
  { args: ['migrate', MISSING, '--to', 'h2', '--hosts-file', '@STATE/typo.yaml'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /unknown key "adress"/, files: { 'typo.yaml': 'hosts:\n  h2: { adress: 10.0.0.2 }\n' } },
  { args: ['migrate', MISSING, '--to', 'h2', '--hosts-file', '@STATE/port.yaml'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /port must be 1-65535/, files: { 'port.yaml': 'hosts:\n  h2: { address: 10.0.0.2, port: 70000 }\n' } },
  { args: ['migrate', MISSING, '--to', 'h2', '--hosts-file', '@STATE/list.yaml'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', files: { 'list.yaml': '- a\n- b\n' } },
  { args: ['migrate', MISSING, '--to', 'h2', '--hosts-file', '@STATE/noaddr.yaml'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /has no address/, files: { 'noaddr.yaml': 'hosts:\n  h2: { user: root }\n' } },
  { args: ['migrate', MISSING, '--to', 'sshcfg'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /Port abc/, files: { '@HOME/.ssh/config': 'Host sshcfg\n  Port abc\n' } },
  { args: ['migrate', MISSING, '--to', 'sshcfg'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /Port 99999/, files: { '@HOME/.ssh/config': 'Host sshcfg\n  Port 99999\n' } },
  { args: ['migrate', MISSING, '--to', 'sshcfg'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /ProxyCommand/, files: { '@HOME/.ssh/config': 'Host sshcfg\n  ProxyCommand nc %h %p\n' } },
  { args: ['migrate', MISSING, '--to', 'constructor'], exit: 5, code: 'ERR_RUNTIME_NOT_FOUND' },
  { args: ['migrate', MISSING, '--to', '__proto__'], exit: 5, code: 'ERR_RUNTIME_NOT_FOUND' },
  { args: ['migrate', MISSING, '--to', NOWHERE], exit: 5, code: 'ERR_RUNTIME_NOT_FOUND' },
  { args: ['migrate', long, '--to', 'h2'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /5000 characters/ },
  { args: ['migrate', 'x;rm -rf /', '--to', 'h2'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['migrate', MISSING, '--to', 'h2', '--tcp-established', 'maybe'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // clone
  { args: ['clone'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['clone', MISSING], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['clone', MISSING, '--to', NOWHERE, '--name', '../../etc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /not a valid name for the clone/ },
  { args: ['clone', MISSING, '--to', NOWHERE, '--name', long], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['clone', MISSING, '--to', NOWHERE, '--name', ''], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['clone', MISSING, '--to', NOWHERE, '--address', 'eth0'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /IFNAME=CIDR/ },
  { args: ['clone', MISSING, '--to', NOWHERE, '--address', 'eth0=10.0.0.1'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['clone', MISSING, '--to', 'a', '--to', 'b'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['clone', MISSING, '--to', NOWHERE, '--strategy', 'post-copy'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  // drain
  { args: ['drain'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--to HOST2/ },
  { args: ['drain', 'h1'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--to HOST2/ },
  { args: ['drain', '--to'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['drain', '--to', 'h2', '--concurrency', '0', '--dry-run'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--concurrency/ },
  { args: ['drain', '--to', 'h2', '--concurrency', 'abc', '--dry-run'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--concurrency must be a number/ },
  { args: ['drain', '--to', 'h2', '--concurrency', '-1', '--dry-run'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['drain', '--to', 'h2', '--concurrency', '1.5', '--dry-run'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['drain', '--to', NOWHERE, '--dry-run'], exit: 6, code: 'ERR_TRANSPORT_UNKNOWN_HOST', says: /does not resolve/ },
  { args: ['drain', '--to', 'a', '--to', 'b', '--dry-run'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['drain', '--to', 'h2', '--strategy', 'x', '--dry-run'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['drain', '--return'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /no drain recorded/ },
  { args: ['drain', '--return'], exit: 1, code: 'ERR_STATE_CORRUPT', says: /drain\.json cannot be read/, files: { 'drain.json': '{"format": "ferry-drains/1", "drains": [' } },
  { args: ['drain', '--return'], exit: 1, code: 'ERR_STATE_CORRUPT', files: { 'drain.json': '"just a string"' } },
  { args: ['drain', '--return'], exit: 3, code: 'ERR_PRECHECK_UNSAFE_PATH', files: { 'drain.json': '@symlink:/etc/passwd' } },
  { args: ['drain', '--to', 'h2', '--hosts-file', '/nonexistent.yaml', '--dry-run'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['drain', NOWHERE, '--to', 'h2'], exit: 6, code: 'ERR_TRANSPORT_UNKNOWN_HOST' },
  // replicate, replicas, failover
  { args: ['replicate'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['replicate', MISSING], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /Missing required argument: to/ },
  { args: ['replicate', MISSING, '--to', NOWHERE, '--rounds', 'abc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--rounds must be a number/ },
  { args: ['replicate', MISSING, '--to', NOWHERE, '--rounds', '0'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /--rounds must be a whole number/ },
  { args: ['replicate', MISSING, '--to', NOWHERE, '--rounds', '-3'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['replicate', MISSING, '--to', NOWHERE, '--every', '-5m'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /"-5m" is not a duration/ },
  { args: ['replicate', MISSING, '--to', NOWHERE, '--every', '5 minutes'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['replicate', MISSING, '--to', NOWHERE, '--every', '10ms'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /under a second/ },
  { args: ['replicate', MISSING, '--to', NOWHERE, '--rounds', '1'], exit: 5, code: 'ERR_RUNTIME_NOT_FOUND' },
  { args: ['replicate', MISSING, '--to', 'a', '--to', 'b'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['replicas', 'extra'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['replicas', '--hosts-file', '/nonexistent.yaml'], exit: 1, code: 'ERR_STATE_CORRUPT', files: { 'replication/web.json': '{"container": ' } },
  { args: ['replicas'], exit: 1, code: 'ERR_STATE_CORRUPT', says: /web\.json cannot be read/, files: { 'replication/web.json': '{"container": ' } },
  { args: ['replicas'], exit: 1, code: 'ERR_STATE_CORRUPT', files: { 'replication/web.json': '[]' } },
  { args: ['replicas'], exit: 1, code: 'ERR_STATE_CORRUPT', files: { 'replicas/web/000001-abcdefgh/replica.json': 'nope', 'replicas/web/current': '@symlink:000001-abcdefgh' } },
  { args: ['failover'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['failover', MISSING], exit: 4, code: 'ERR_IMAGE_NOT_FOUND', says: /no replica/ },
  { args: ['failover', '../../etc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['failover', 'web'], exit: 1, code: 'ERR_STATE_CORRUPT', files: { 'replicas/web/000001-abcdefgh/replica.json': '{', 'replicas/web/current': '@symlink:000001-abcdefgh' } },
  { args: ['failover', 'web'], exit: 1, code: 'ERR_STATE_CORRUPT', says: /not at a round/, files: { 'replicas/web/current': '@symlink:../../../etc' } },
  // gc, agent
  { args: ['gc', '--older-than', 'soon'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['gc', '--older-than', '-1h'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['gc', 'extra'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['agent', '--cleanup', '../../etc'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT', says: /bad migration id/ },
  { args: ['agent', '--cleanup'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
  { args: ['agent', '--bogus'], exit: 2, code: 'ERR_PRECHECK_BAD_INPUT' },
];

/** Cases whose --json variant must be one JSON error line too (usage errors and a few others). */
const JSON_TOO = CASES.filter((c) => c.exit === 2 && c.args.length > 0 && c.args[0] !== 'frobnicate' && !c.args.includes('--no-such-flag')).slice(0, 15);

beforeAll(() => {
  home = mkdtempSync(join(tmpdir(), 'ferry-bad-home-'));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function run(c: Case, json: boolean): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const scratch = mkdtempSync(join(tmpdir(), 'ferry-bad-'));
  const caseHome = join(scratch, 'home');
  const stateDir = join(scratch, 'state');
  mkdirSync(join(caseHome, '.ssh'), { recursive: true });
  mkdirSync(stateDir, { recursive: true });
  for (const [rel, content] of Object.entries(c.files ?? {})) {
    const path = rel.startsWith('@HOME/') ? join(caseHome, rel.slice(6)) : join(stateDir, rel);
    mkdirSync(join(path, '..'), { recursive: true });
    if (content.startsWith('@symlink:')) symlinkSync(content.slice(9), path);
    else writeFileSync(path, content);
  }
  const args = c.args.map((a) => a.replace(/^@STATE/, stateDir));
  const env = { ...process.env, HOME: caseHome, FERRY_STATE_DIR: stateDir };
  delete env.SSH_AUTH_SOCK;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FERRY, ...args, ...(json ? ['--json'] : [])], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      rmSync(scratch, { recursive: true, force: true });
      resolve({ status, stdout, stderr });
    });
  });
}

/** Runs every case, a few at a time (each is a node process). */
async function runAll(cases: Case[], json: boolean) {
  const results: Awaited<ReturnType<typeof run>>[] = new Array(cases.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: 6 }, async () => {
      for (let i = next++; i < cases.length; i = next++) results[i] = await run(cases[i]!, json);
    }),
  );
  return results;
}

const STACK = /\n\s+at .+:\d+:\d+\)?/;
const label = (c: Case) => `ferry ${c.args.map((a) => (a.length > 40 ? `${a.slice(0, 10)}...(${a.length})` : JSON.stringify(a))).join(' ')}`;

test(`at least 100 cases across every command`, () => {
  expect(CASES.length).toBeGreaterThanOrEqual(100);
  const commands = new Set(CASES.map((c) => c.args[0]));
  for (const command of ['doctor', 'ps', 'checkpoint', 'restore', 'session', 'start', 'snapshot', 'migrate', 'clone', 'drain', 'replicate', 'replicas', 'failover', 'gc', 'agent']) {
    expect(commands).toContain(command);
  }
});

test('each: its exit code, one error line with a code, a hint, no stack trace', async () => {
  const results = await runAll(CASES, false);
  const wrong: string[] = [];
  CASES.forEach((c, i) => {
    const r = results[i]!;
    const [first = '', second = ''] = r.stderr.split('\n');
    const problems = [
      r.status !== c.exit && `exit ${r.status}, expected ${c.exit}`,
      !first.startsWith(`error ${c.code}: `) && `first line ${JSON.stringify(first.slice(0, 160))}, expected "error ${c.code}: ..."`,
      !/^ {2}hint: \S/.test(second) && `no hint on the second line (${JSON.stringify(second.slice(0, 80))})`,
      STACK.test(r.stderr) && 'a stack trace',
      c.says && !c.says.test(first) && `the message does not say ${c.says}`,
      first.length > 400 && `a ${first.length}-character error line`,
    ].filter(Boolean);
    if (problems.length) wrong.push(`${label(c)}: ${problems.join('; ')}`);
  });
  expect(wrong).toEqual([]);
});

test('with --json, the error is one JSON line with the code and a hint', async () => {
  const results = await runAll(JSON_TOO, true);
  const wrong: string[] = [];
  JSON_TOO.forEach((c, i) => {
    const r = results[i]!;
    const lines = r.stderr.trim().split('\n');
    let parsed: { event?: string; error?: { code?: string; hint?: string } } | undefined;
    try {
      parsed = JSON.parse(lines[0] ?? '');
    } catch {
      parsed = undefined;
    }
    if (r.status !== c.exit || lines.length !== 1 || parsed?.event !== 'error' || parsed.error?.code !== c.code || !parsed.error.hint) {
      wrong.push(`${label(c)} --json: exit ${r.status}, stderr ${JSON.stringify(r.stderr.slice(0, 200))}`);
    }
  });
  expect(wrong).toEqual([]);
});
