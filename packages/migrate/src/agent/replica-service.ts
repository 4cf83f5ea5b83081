/**
 * The agent's replication methods: a round lands in the standby's replica store (replica-store.ts), not in a
 * migration directory. The round's uploads go through the agent's shared `upload` method; an abort or a dropped
 * connection discards the incomplete round like an uncommitted migration.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { FerryError } from '@ferry/core';
import type { AgentPeer } from '../protocol/agent-peer';
import type { PrepareParams } from '../protocol/agent-messages';
import { ReplicaStore, type ReplicaMeta } from '../replication/replica-store';
import { MIGRATION_ID, freeBytes, type Incoming } from './incoming';

export interface ReplicaServiceContext {
  stateDir: string;
  migrations: Map<string, Incoming>;
  get(id: unknown): Incoming;
  requireHello(): void;
  log(line: string): void;
}

export function serveReplicaRounds(peer: AgentPeer, ctx: ReplicaServiceContext): void {
  const replicas = new ReplicaStore(join(ctx.stateDir, 'replicas'));

  peer.handle('replica-prepare', async (params: PrepareParams) => {
    ctx.requireHello();
    if (!MIGRATION_ID.test(params.migrationId)) throw new FerryError('ERR_AGENT_PROTOCOL', 'bad round id');
    const dir = replicas.beginRound(params.name, params.migrationId);
    const m: Incoming = { id: params.migrationId, dir, runtime: params.runtime, name: params.name, restored: false, committed: false };
    ctx.migrations.set(m.id, m);
    return { dir, freeDiskBytes: freeBytes(dir) };
  });

  peer.handle('replica-commit', async (params: { migrationId: string; meta: ReplicaMeta }) => {
    const m = ctx.get(params.migrationId);
    rmSync(join(m.dir, 'work'), { recursive: true, force: true });
    const replica = replicas.completeRound(m.name, m.id, { ...params.meta, container: m.name, runtime: m.runtime, roundId: m.id });
    m.committed = true;
    ctx.migrations.delete(m.id);
    ctx.log(`replica of ${m.name} complete: ${replica.dir}`);
    return { dir: replica.dir };
  });
}
