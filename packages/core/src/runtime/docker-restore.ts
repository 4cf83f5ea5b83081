/**
 * A Docker restore: Docker must own the restored container and restores only from the container's own checkpoint
 * directory (DOCKER_ROOT/containers/ID/checkpoints/NAME). So the container is created again from the record (same
 * image, same create options), its writable layer copied in, and a checkpoint directory of links to the received
 * images written (docker-checkpoint-dir.ts), before `start --checkpoint`.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, rmSync } from 'node:fs';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { RUNC_CRIU_CONFIG, runcCriuConfigHasTcpEstablished } from './criu-runc-config';
import { FerryError } from '../model/ferry-error';
import { throwIfAborted, type Reverter } from './adapter-common';
import { readCheckpointRecord, RECORD_FILE, type CheckpointRecord } from './checkpoint-record';
import { writeParentLinkedCheckpoint } from './docker-checkpoint-dir';
import { notExperimental, type DockerClient } from './docker-client';
import type { RestorePlan } from './restore-pipeline';
import type { ToolOutcome } from './run-tool';
import type { RestoreOptions } from './runtime-adapter';

export interface DockerRestorePrep {
  /** The created container's id. */
  id: string;
  checkpoint: string;
  checkpointDir: string;
  /** The Docker root (where containerd keeps the restore's log). */
  root: string;
}

/** Refuses what Docker's restore cannot do: lazy pages, new addresses. */
export function refuseRestoreOptions(options: RestoreOptions): void {
  if (options.lazyPages) throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Docker containers cannot be restored with lazy pages', { hint: 'Use --strategy stop-and-copy.' });
  if (options.readdress && Object.keys(options.readdress).length > 0) {
    throw new FerryError('ERR_PRECHECK_FEATURE_MISSING', 'Docker containers cannot be restored with new addresses', { hint: 'Docker assigns addresses itself; restore without --address.' });
  }
}

/** The Docker record in `imagesDir`; ERR_IMAGE_NOT_FOUND when there is none (ferry cannot tell what to create). */
export function readDockerRecord(imagesDir: string): CheckpointRecord<'docker'> {
  const record = readCheckpointRecord(imagesDir, 'docker');
  if (record) return record;
  throw new FerryError('ERR_IMAGE_NOT_FOUND', `${imagesDir} has no ${RECORD_FILE}: ferry cannot tell which Docker container to make`, {
    hint: 'Restore a directory written by `ferry checkpoint` of a Docker container.',
    details: { path: join(imagesDir, RECORD_FILE) },
  });
}

/** Creates the container with the recorded options, its writable layer and its checkpoint directory; undone on failure. */
export async function createForRestore(docker: DockerClient, plan: RestorePlan<'docker'>, revert: Reverter, timeoutMs: number): Promise<DockerRestorePrep> {
  const { name, imagesDir } = plan;
  const record = plan.record!;
  const daemon = await docker.daemonInfo();
  if (!daemon.experimental) throw notExperimental(`restore of ${name}`);
  const image = await imageToCreateFrom(docker, record);
  const created = await docker.call(`create ${name}`, (d) => d.createContainer({ ...record.docker.create, Image: image, name }), name);
  const checkpoint = `ferry-${randomBytes(6).toString('hex')}`;
  const checkpointDir = join(daemon.root, 'containers', created.id, 'checkpoints', checkpoint);
  revert.add(async () => {
    await docker.call(`remove ${name}`, (d) => d.getContainer(created.id).remove({ force: true }), name).catch(() => undefined);
    rmSync(checkpointDir, { recursive: true, force: true });
  });
  const changes = record.docker.rootfsChanges;
  if (changes && changes.files > 0) {
    // Into the created container's filesystem through Docker (it knows where and how its rootfs is mounted).
    const tar = createReadStream(join(imagesDir, changes.tar));
    await docker.call(`copy the writable layer into ${name}`, (d) => d.getContainer(created.id).putArchive(tar, { path: '/' }), name, timeoutMs);
  }
  await writeParentLinkedCheckpoint(imagesDir, checkpointDir);
  return { id: created.id, checkpoint, checkpointDir, root: daemon.root };
}

/**
 * `start --checkpoint`. Docker reports a failed start as an API error (docker-errors.ts quotes CRIU from it), so a
 * failure rejects; the outcome only carries the time.
 */
export async function startFromCheckpoint(docker: DockerClient, prep: DockerRestorePrep, plan: RestorePlan<'docker'>, timeoutMs: number): Promise<ToolOutcome> {
  throwIfAborted(plan.options.signal, `restore of ${plan.name}`);
  const started = Date.now();
  // POST /containers/ID/start?checkpoint=NAME with an empty body: docker-modem sends a POST's options as the body too
  // unless they are split into _query and _body, and Docker >= 1.24 refuses a start with a body.
  const options = { _query: { checkpoint: prep.checkpoint }, _body: {} } as Dockerode.ContainerStartOptions;
  await docker.call(`start ${plan.name} from its checkpoint`, (d) => d.getContainer(prep.id).start(options), plan.name, timeoutMs).catch((err: unknown) => {
    // containerd deletes CRIU's restore log with the failed task: say the likely cause where it applies.
    if (plan.record?.criu.tcpEstablished && !runcCriuConfigHasTcpEstablished() && err instanceof FerryError) {
      throw new FerryError(err.code, err.message, {
        hint: `If ${plan.name} held established TCP connections: add \`tcp-established\` to ${RUNC_CRIU_CONFIG} on this host (docs/docker.md). ${err.hint ?? ''}`.trim(),
        cause: err,
        ...(err.details ? { details: err.details } : {}),
      });
    }
    throw err;
  });
  return { args: ['start', prep.id, prep.checkpoint], exitCode: 0, stdout: '', stderr: '', errorText: '', timedOut: false, aborted: false, durationMs: Date.now() - started, ok: true };
}

/** The recorded image by name when the name still points at it (so `docker ps` shows it), else by id. */
async function imageToCreateFrom(docker: DockerClient, record: CheckpointRecord<'docker'>): Promise<string> {
  const { imageId, imageName } = record.docker;
  if (!(await docker.hasImage(imageId))) {
    throw new FerryError('ERR_IMAGE_NOT_FOUND', `docker has no image ${imageName ?? imageId} (${imageId}) to restore ${record.id} from`, {
      hint: `Load it first (\`docker save ${imageName ?? imageId}\` on the source, \`docker load\` here); \`ferry migrate\` does this by itself.`,
      details: { imageId, imageName },
    });
  }
  if (!imageName) return imageId;
  const named = await docker.call(`inspect image ${imageName}`, (d) => d.getImage(imageName).inspect(), imageName).catch(() => undefined);
  return named?.Id === imageId ? imageName : imageId;
}
