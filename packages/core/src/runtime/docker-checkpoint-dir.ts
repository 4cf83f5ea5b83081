/**
 * Builds the checkpoint directory Docker restores from (DOCKER_ROOT/containers/ID/checkpoints/NAME) out of a CRIU
 * images directory, without the memory.
 *
 * Why: `docker start --checkpoint` has containerd tar the whole checkpoint into its content store and unpack it into
 * a temporary directory before CRIU reads it: two copies and a sha256 of every byte, seconds per 256 MiB, all of it
 * while the container is down (the lab's first measurement: 5.4 s of a 256 MiB restore). CRIU itself can read pages
 * from a parent images directory (the `parent` link of incremental dumps, entries flagged PE_PARENT). So the
 * checkpoint directory gets every image except the pages, its pagemaps rewritten so that each range stored here reads
 * "in the parent", empty pages images, and a `parent` link to the images directory that holds the pages. containerd
 * then copies kilobytes, and CRIU reads the memory from where ferry received it.
 *
 * The images directory must stay until the restore has finished (it is the parent). Image files other than pagemaps
 * and pages are hard-linked when on the same filesystem, copied otherwise.
 */
import { copyFileSync, linkSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readImageEntries, encodeImage, type WireObject } from '../image/image-file';
import { PAGEMAP_IMAGE, PE_FLAGS } from '../image/image-schema';

const PAGES_IMAGE = /^pages-\d+\.img$/;
const PAGEMAP_IMAGE_NAME = /^pagemap-.+\.img$/;

export async function writeParentLinkedCheckpoint(imagesDir: string, checkpointDir: string): Promise<void> {
  mkdirSync(checkpointDir, { recursive: true, mode: 0o700 });
  for (const entry of readdirSync(imagesDir, { withFileTypes: true })) {
    if (!entry.isFile()) continue; // a `parent` link of the images' own is followed through the new parent
    const from = join(imagesDir, entry.name);
    const to = join(checkpointDir, entry.name);
    if (PAGES_IMAGE.test(entry.name)) {
      writeFileSync(to, '', { mode: 0o600 });
    } else if (PAGEMAP_IMAGE_NAME.test(entry.name)) {
      writeFileSync(to, await pagemapInParent(from), { mode: 0o600 });
    } else {
      linkOrCopy(from, to);
    }
  }
  symlinkSync(parentLinkTarget(imagesDir), join(checkpointDir, 'parent'));
}

/**
 * The `parent` link's target: IMAGES_DIR as a relative path that climbs to / first ("../" more times than any
 * directory is deep, then the absolute path without its slash). Why not IMAGES_DIR itself: CRIU opens the link
 * relative to its images directory fd after the restored tree has its new root, where an absolute target resolves
 * inside the container ("Can't open parent path"); and containerd unpacks the checkpoint into a temporary directory
 * of its own, so a plain relative path would be relative to the wrong place. ".." at / stays at /.
 */
export function parentLinkTarget(imagesDir: string): string {
  return `${'../'.repeat(64)}${imagesDir.replace(/^\/+/, '')}`;
}

/** The pagemap with every range that is stored in this directory marked as stored in the parent instead. */
export async function pagemapInParent(path: string): Promise<Buffer> {
  const image = await readImageEntries(path, PAGEMAP_IMAGE);
  const entries = image.entries.map(({ value }): WireObject => {
    const flags = value.flags !== undefined ? (value.flags as number) : value.in_parent === true ? PE_FLAGS.PARENT : PE_FLAGS.PRESENT;
    const { in_parent: _old, ...rest } = value;
    // Present (possibly lazy) pages now come from the parent; pages already in a parent stay there.
    return { ...rest, flags: flags & PE_FLAGS.PRESENT || flags & PE_FLAGS.PARENT ? PE_FLAGS.PARENT : flags };
  });
  return encodeImage(PAGEMAP_IMAGE, entries, { head: image.head?.value ?? {} });
}

function linkOrCopy(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    copyFileSync(from, to);
  }
}
