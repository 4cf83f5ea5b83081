/**
 * Applies a hold's rules inside its network namespace, after checking that the path still names the namespace the
 * hold was planned for: `nsenter --net=PATH iptables -S` to see what is there, then one `iptables-restore
 * --noflush` transaction per address family (its input comes from hold-plan.ts, built from validated fields only;
 * no shell anywhere). One transaction: never half a hold, and two processes per family instead of a dozen
 * (each iptables run costs ~0.1 s on a loaded machine).
 */
import { execFile } from 'node:child_process';
import { statSync } from 'node:fs';
import { findExecutable } from '../host/find-executable';
import { FerryError } from '../model/ferry-error';
import { installScript, removeScript, type HoldFamily, type IptablesVariant, type PacketHoldRecord } from './hold-plan';

export interface ToolOutcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs FILE ARGS (stdin: `input`) and reports its exit code; rejects only when FILE cannot be started. Injected by
 * unit tests.
 */
export type ToolRunner = (file: string, args: readonly string[], input?: string) => Promise<ToolOutcome>;

export const runTool: ToolRunner = (file, args, input) =>
  new Promise((resolve, reject) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && typeof (err as NodeJS.ErrnoException).code === 'string') return reject(err); // ENOENT, EACCES
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.on('error', () => undefined); // a tool that exits without reading: its exit code says why
    child.stdin?.end(input ?? '');
  });

export interface NetfilterTools {
  nsenterPath: string;
  variant: IptablesVariant;
  /** Per family: the binary that lists rules (iptables, ip6tables) and the one that applies a transaction. */
  iptables: Record<HoldFamily, { list: string; restore: string }>;
}

const BINARIES: Record<HoldFamily, string> = { ipv4: 'iptables', ipv6: 'ip6tables' };
const VARIANT_SUFFIX: Record<IptablesVariant, string> = { nf_tables: 'nft', legacy: 'legacy' };

/**
 * The iptables binaries of one variant: `iptables-nft`/`iptables-legacy` when installed, else plain `iptables` if
 * it is that variant. Without a variant: whatever plain `iptables` is (`iptables -V` says).
 */
export async function resolveNetfilterTools(searchPath: string, variant?: IptablesVariant, run: ToolRunner = runTool): Promise<NetfilterTools> {
  const nsenterPath = findExecutable('nsenter', searchPath);
  const missing = (what: string) =>
    new FerryError('ERR_NETWORK_HOLD_FAILED', `${what} is not installed`, { hint: 'Install iptables (and util-linux for nsenter): apt-get install iptables.' });
  if (!nsenterPath) throw missing('nsenter');
  const iptables = {} as NetfilterTools['iptables'];
  let found: IptablesVariant | undefined = variant;
  for (const family of ['ipv4', 'ipv6'] as const) {
    const binary = BINARIES[family];
    const specific = found ? findExecutable(`${binary}-${VARIANT_SUFFIX[found]}`, searchPath) : undefined;
    const list = specific ?? findExecutable(binary, searchPath);
    if (!list) throw missing(binary);
    if (!specific) {
      const { stdout, code } = await run(list, ['-V']);
      const actual: IptablesVariant = /nf_tables/.test(stdout) ? 'nf_tables' : 'legacy';
      if (code !== 0 || (found && actual !== found)) {
        throw new FerryError('ERR_NETWORK_HOLD_FAILED', `${list} is not the ${found ?? 'expected'} variant of iptables (${stdout.trim()})`, {
          hint: `Install ${binary}-${VARIANT_SUFFIX[found ?? actual]}: the hold's rules were made with that variant.`,
        });
      }
      found = actual;
    }
    const restore = specific
      ? findExecutable(`${binary}-${VARIANT_SUFFIX[found!]}-restore`, searchPath)
      : findExecutable(`${binary}-restore`, searchPath);
    if (!restore) throw missing(`${binary}-restore`);
    iptables[family] = { list, restore };
  }
  return { nsenterPath, variant: found!, iptables };
}

/** 'ok' when the path names the recorded namespace, 'gone' when nothing is there; throws for another namespace. */
export function checkNetnsIdentity(record: PacketHoldRecord): 'ok' | 'gone' {
  let stat;
  try {
    stat = statSync(record.netnsPath);
  } catch {
    return 'gone';
  }
  if (stat.dev === record.netns.dev && stat.ino === record.netns.ino) return 'ok';
  throw new FerryError('ERR_NETWORK_HOLD_FAILED', `${record.netnsPath} names another network namespace than the one hold ${record.id} was made in`, {
    hint: 'The held namespace is gone and its path was reused: nothing of the hold is left to lift there.',
    details: { netnsPath: record.netnsPath, expected: record.netns, found: { dev: stat.dev, ino: stat.ino } },
  });
}

type Apply = (record: PacketHoldRecord, family: HoldFamily, listing: string) => string | undefined;

async function applyScripts(record: PacketHoldRecord, tools: NetfilterTools, run: ToolRunner, action: 'installing' | 'removing', script: Apply): Promise<'done' | 'gone'> {
  const inNs = (file: string, args: string[], input?: string) => run(tools.nsenterPath, [`--net=${record.netnsPath}`, file, ...args], input);
  // The families are independent tables: both at once.
  const outcomes = await Promise.all(
    record.families.map(async (family): Promise<'done' | 'gone'> => {
      const { list, restore } = tools.iptables[family];
      // A broken iptables must not pass for "nothing there": listing the table has to work first.
      const listed = await inNs(list, ['-w', '5', '-t', 'filter', '-S']);
      if (listed.code !== 0) {
        if (checkNetnsIdentity(record) === 'gone') return 'gone';
        throw failure(record, action, `${list} -S`, listed.stderr, list);
      }
      const input = script(record, family, listed.stdout);
      if (input === undefined) return 'done';
      const applied = await inNs(restore, ['-w', '5', '--noflush'], input);
      if (applied.code !== 0) {
        if (checkNetnsIdentity(record) === 'gone') return 'gone';
        throw failure(record, action, `${restore} --noflush`, applied.stderr, list, input);
      }
      return 'done';
    }),
  );
  return outcomes.includes('gone') ? 'gone' : 'done';
}

function failure(record: PacketHoldRecord, action: string, what: string, stderr: string, list: string, input?: string): FerryError {
  return new FerryError('ERR_NETWORK_HOLD_FAILED', `${action} the packet hold in ${record.netnsPath}: ${what} failed: ${stderr.trim()}`, {
    hint: `Check the namespace's rules: nsenter --net=${record.netnsPath} ${list} -S (chain ${record.chain}).`,
    details: { holdId: record.id, stderr: stderr.trim(), ...(input ? { input } : {}) },
  });
}

/** Installs the hold's rules in one transaction per family (idempotent: jumps already there are kept). */
export async function installHoldRules(record: PacketHoldRecord, tools: NetfilterTools, run: ToolRunner = runTool): Promise<void> {
  const gone = () => new FerryError('ERR_NETWORK_HOLD_FAILED', `network namespace ${record.netnsPath} is gone`, { hint: 'Hold the traffic of a namespace that exists.' });
  if (checkNetnsIdentity(record) === 'gone') throw gone();
  if ((await applyScripts(record, tools, run, 'installing', installScript)) === 'gone') throw gone();
}

/** Removes the hold's rules; idempotent. 'gone' when the namespace no longer exists (its rules went with it). */
export async function removeHoldRules(record: PacketHoldRecord, tools: NetfilterTools, run: ToolRunner = runTool): Promise<'removed' | 'gone'> {
  if (checkNetnsIdentity(record) === 'gone') return 'gone';
  const done = await applyScripts(record, tools, run, 'removing', (r, _family, listing) => removeScript(r, listing));
  return done === 'gone' ? 'gone' : 'removed';
}

/**
 * Lifts a hold from any process, with the record its journal kept: removes the rules (traffic flows again; what a
 * dead holder had queued was dropped by the kernel and gets retransmitted). For recovery after `committed`; before
 * it, remove the held copy first. Idempotent; 'gone' when the namespace no longer exists.
 */
export async function liftPacketHold(record: PacketHoldRecord, searchPath: string, run: ToolRunner = runTool): Promise<'removed' | 'gone'> {
  if (checkNetnsIdentity(record) === 'gone') return 'gone';
  return removeHoldRules(record, await resolveNetfilterTools(searchPath, record.variant, run), run);
}
