/**
 * What a guardian is given and how it talks: the move's request, written by the CLI into the move's directory
 * (STATE/migrations/ID/guardian.json, 0600, in a 0700 directory), and one JSON object per line on the control
 * socket STATE/migrations/ID/control.sock.
 *
 *   guardian → CLI: { event }  { notice }  { report }  { error }
 *   CLI → guardian: { abort: reason }
 */
import { join } from 'node:path';
import type { Socket } from 'node:net';
import type { MigrationEvent } from '@ferry/core';
import type { MigrateRequest, MigrationReport } from '../engine/migrate-deps';
import type { WireError } from '../protocol/agent-peer';

export interface GuardedMove {
  request: Omit<MigrateRequest, 'onEvent' | 'signal' | 'migrationId'>;
  /** How the guardian reaches the destination (the CLI's SSH options, minus the agent socket it inherits). */
  ssh: { acceptNewHostKey: boolean; agentCommand?: string[] };
}

export type GuardianMessage =
  | { event: MigrationEvent }
  | { notice: string }
  | { report: MigrationReport }
  | { error: WireError };

export type ClientMessage = { abort: string };

export const GUARDED_FILE = 'guardian.json';
export const GUARDIAN_LOG = 'guardian.log';

export function controlSocketPath(dir: string): string {
  return join(dir, 'control.sock');
}

/** Calls `onMessage` with each JSON line the socket delivers; malformed lines are ignored. */
export function readLines<T>(socket: Socket, onMessage: (message: T) => void): void {
  let pending = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.trim()) continue;
      try {
        onMessage(JSON.parse(line) as T);
      } catch {
        /* not ours */
      }
    }
  });
}

export function writeLine(socket: Socket, message: GuardianMessage | ClientMessage): void {
  if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(message)}\n`);
}
