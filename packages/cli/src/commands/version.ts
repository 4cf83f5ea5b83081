/**
 * `ferry version` (and `ferry --version`): ferry's own version, the CRIU it would use (asked over CRIU's RPC, as every
 * checkpoint does) and the agent protocol version two hosts must share for a migration. A missing or broken CRIU is
 * reported, not an error: the version of ferry is still worth printing.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { findExecutable } from '@ferry/core';
import { PROTOCOL_VERSION } from '@ferry/migrate';
import { criuClient } from '../host-context';

export interface VersionInfo {
  ferry: string;
  criu: { version?: string; path?: string; error?: string };
  agentProtocol: number;
  node: string;
}

export function ferryVersion(): string {
  // dist/commands/version.js -> the cli package's package.json
  return (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
}

export async function versionInfo(criuPath: string): Promise<VersionInfo> {
  const path = criuPath.includes('/') ? criuPath : findExecutable(criuPath, process.env.PATH ?? '');
  let criu: VersionInfo['criu'];
  try {
    const v = await criuClient(criuPath).version();
    criu = { version: v.text, ...(path ? { path } : {}) };
  } catch (err) {
    criu = { ...(path ? { path } : {}), error: (err as Error).message };
  }
  return { ferry: ferryVersion(), criu, agentProtocol: PROTOCOL_VERSION, node: process.version };
}

export function renderVersion(v: VersionInfo): string {
  const criu = v.criu.version ? `${v.criu.version}${v.criu.path ? ` (${v.criu.path})` : ''}` : `unknown: ${v.criu.error ?? 'not found'}`;
  return `ferry ${v.ferry}\n  criu            ${criu}\n  agent protocol  ${v.agentProtocol}\n  node            ${v.node}\n`;
}

export const versionCommand: CommandModule<object, { json: boolean; criu: string }> = {
  command: 'version',
  describe: "Show ferry's version, CRIU's and the agent protocol's (also `ferry --version`)",
  builder: (y) =>
    y
      .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object' })
      .option('criu', { type: 'string', default: 'criu', describe: 'CRIU binary to ask' }),
  handler: async (args) => {
    const info = await versionInfo(args.criu);
    process.stdout.write(args.json ? `${JSON.stringify(info)}\n` : renderVersion(info));
  },
};
