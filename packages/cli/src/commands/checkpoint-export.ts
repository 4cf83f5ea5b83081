/**
 * `ferry checkpoint CT --export FILE`, after the checkpoint: the archive is written from the image directory, which
 * is removed afterwards unless the operator named it (--dir). If writing the archive fails, the image directory
 * stays whatever was asked: after a checkpoint without --leave-running it is the only copy of the container.
 */
import { rmSync } from 'node:fs';
import { archiveTools, FerryError, writeCheckpointArchive } from '@ferry/core';
import { exportJson, renderExport } from '../render-archive';
import { checkpointJson, renderCheckpoint, type CheckpointSummary } from '../render-checkpoint';

export async function exportAfterCheckpoint(input: {
  summary: CheckpointSummary;
  file: string;
  rootfsImage: string | undefined;
  keepDir: boolean;
  json: boolean;
}): Promise<void> {
  const { summary } = input;
  const result = await writeCheckpointArchive({
    imagesDir: summary.imagesDir,
    file: input.file,
    ...(input.rootfsImage === undefined ? {} : { rootfsImage: input.rootfsImage }),
    tools: archiveTools(process.env.PATH ?? ''),
  }).catch((err: unknown) => {
    // The checkpoint itself succeeded: say where it is (without --leave-running it is the container now).
    const where = `The checkpoint is kept in ${summary.imagesDir}: \`ferry restore ${summary.imagesDir}\` brings the container back.`;
    if (err instanceof FerryError) throw new FerryError(err.code, err.message, { hint: `${err.hint ?? ''} ${where}`.trim(), cause: err, ...(err.details ? { details: err.details } : {}) });
    throw err;
  });
  if (!input.keepDir) rmSync(summary.imagesDir, { recursive: true, force: true });
  if (input.json) {
    const line = JSON.parse(checkpointJson(summary)) as Record<string, unknown>;
    if (!input.keepDir) delete line.imagesDir;
    process.stdout.write(`${JSON.stringify({ ...line, archive: exportJson(result) })}\n`);
    return;
  }
  const shown = input.keepDir ? summary : { ...summary, into: result.file, restoreCommand: `ferry restore --import ${result.file}` };
  process.stdout.write(`${renderCheckpoint(shown)}${renderExport(result)}`);
}
