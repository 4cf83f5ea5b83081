/** --dry-run, --max-downtime and --bandwidth: shared by migrate, clone and drain, resolved once into request fields. */
import type { Argv } from 'yargs';
import { FerryError } from '@ferry/core';
import { policyFor, type MigrateRequest } from '@ferry/migrate';

export interface LimitArgs {
  'dry-run': boolean;
  'max-downtime'?: string;
  bandwidth?: string;
}

export function limitOptions<T>(y: Argv<T>): Argv<T & LimitArgs> {
  return y
    .option('dry-run', { type: 'boolean', default: false, describe: 'Connect, measure and print the plan with its predicted bytes, freeze and time; freeze and copy nothing' })
    .option('max-downtime', { type: 'string', describe: 'Longest acceptable freeze (e.g. 500ms, 2s): fall back to a strategy that meets it, or refuse' })
    .option('bandwidth', { type: 'string', describe: 'Cap the rate ferry sends at (e.g. 50M = 50 MiB/s, 400Mbit)' }) as Argv<T & LimitArgs>;
}

/** 500ms, 2s, 1.5m, 1h: the unit is required (a bare 500 could be either). */
export function parseDuration(text: string, option: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  const value = m ? Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'] : Number.NaN;
  if (!Number.isFinite(value) || value <= 0) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `${option} "${text}" is not a duration`, { hint: `Use e.g. ${option} 500ms, 2s or 1m.` });
  }
  return value;
}

const UNITS: Record<string, number> = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30 };

/** Bytes per second: 50M, 50MiB/s, 50MB/s (binary multiples), or bits: 400Mbit, 1Gbit/s (decimal, as links are sold). */
export function parseBandwidth(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmg]?)(i?b|bit|bits)?(\/s)?$/i.exec(text.trim());
  let value = Number.NaN;
  if (m) {
    const unit = m[2]!.toLowerCase();
    const bits = /^bits?$/i.test(m[3] ?? '');
    value = bits ? (Number(m[1]) * ({ '': 1, k: 1e3, m: 1e6, g: 1e9 } as Record<string, number>)[unit]!) / 8 : Number(m[1]) * UNITS[unit]!;
  }
  if (!Number.isFinite(value) || value < 64 << 10) {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `--bandwidth "${text}" is not a rate of at least 64 KiB/s`, {
      hint: 'Use e.g. --bandwidth 50M (50 MiB/s), 512K, or 400Mbit.',
    });
  }
  return Math.round(value);
}

/** The request fields the limits set. Under --bandwidth, stop-and-copy sends images over the capped connection. */
export function limitsFromArgs(args: LimitArgs): Pick<MigrateRequest, 'maxDowntimeMs' | 'bandwidthBytesPerSec' | 'convergence' | 'streamPages'> {
  const maxDowntimeMs = args['max-downtime'] !== undefined ? parseDuration(args['max-downtime'], '--max-downtime') : undefined;
  const bandwidthBytesPerSec = args.bandwidth !== undefined ? parseBandwidth(args.bandwidth) : undefined;
  return {
    ...(maxDowntimeMs !== undefined ? { maxDowntimeMs, convergence: policyFor(maxDowntimeMs) } : {}),
    ...(bandwidthBytesPerSec !== undefined ? { bandwidthBytesPerSec, streamPages: false } : {}),
  };
}
