/**
 * `ferry restore --import FILE`: a checkpoint archive restored as a runc container. The archive is unpacked and
 * turned into a bundle (archive-import.ts), then restored like any image directory; when anything fails the import
 * directory is removed and nothing of the container runs.
 */
import { FerryError, imageDirBytes } from '@ferry/core';
import { runtimeRegistry } from '../host-context';
import { importJson, renderImport } from '../render-archive';
import { createProgress, renderRestore, restoreJson, type RestoreSummary } from '../render-checkpoint';
import { withImportedArchive } from './archive-import';
import { withInterrupt } from './interrupt';

export interface RestoreImportArgs {
  import: string;
  name?: string;
  runtime?: string;
  rootfs?: string;
  'import-dir'?: string;
  'tcp-established': boolean;
  'file-locks': boolean;
  json: boolean;
}

export async function restoreFromArchive(args: RestoreImportArgs): Promise<void> {
  if (args.runtime !== undefined && args.runtime !== 'runc') {
    throw new FerryError('ERR_PRECHECK_BAD_INPUT', `--import restores as a runc container, not ${args.runtime}`, { hint: 'Drop --runtime, or pass --runtime runc.' });
  }
  const adapter = runtimeRegistry().get('runc');
  const progress = createProgress({ enabled: !args.json && process.stderr.isTTY === true, write: (s) => process.stderr.write(s) });
  progress.start(`restoring ${args.import} as a runc container`);
  let ok = false;
  try {
    const { prepared, result, imageBytes } = await withImportedArchive(
      {
        file: args.import,
        ...(args['import-dir'] === undefined ? {} : { dir: args['import-dir'] }),
        ...(args.name === undefined ? {} : { name: args.name }),
        ...(args.rootfs === undefined ? {} : { rootfs: args.rootfs }),
        tcpEstablished: args['tcp-established'],
        fileLocks: args['file-locks'],
      },
      async (prepared) => {
        const imageBytes = await imageDirBytes(prepared.imagesDir).catch(() => 0);
        const result = await withInterrupt((signal) =>
          adapter.restore({
            imagesDir: prepared.imagesDir,
            name: prepared.name,
            bundle: prepared.bundle,
            tcpEstablished: args['tcp-established'],
            fileLocks: args['file-locks'],
            signal,
          }),
        );
        return { prepared, result, imageBytes };
      },
    );
    // The container runs from here on: nothing below may remove the import directory.
    ok = true;
    progress.end(true);
    const summary: RestoreSummary = { container: result.container, imagesDir: prepared.imagesDir, restoreMs: result.restoreMs, imageBytes };
    if (args.json) {
      const line = JSON.parse(restoreJson(summary)) as Record<string, unknown>;
      process.stdout.write(`${JSON.stringify({ ...line, archive: { file: args.import, ...importJson(prepared) } })}\n`);
    } else {
      process.stdout.write(`${renderRestore(summary)}${renderImport(prepared)}`);
    }
  } finally {
    if (!ok) progress.end(false);
  }
}
