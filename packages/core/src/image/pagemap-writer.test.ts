import { encodeImage } from './image-file';
import { PAGEMAP_IMAGE, PE_FLAGS } from './image-schema';
import { readPagemap } from './image-records';
import { encodePagemapImage } from './pagemap-writer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const entries = [
  { vaddr: 0x400000n, nrPages: 1, flags: PE_FLAGS.PRESENT },
  { vaddr: 0x7ffd_1234_5000n, nrPages: 300_000, flags: PE_FLAGS.PARENT },
  { vaddr: 0xffff_ffff_f000n, nrPages: 127, flags: PE_FLAGS.PRESENT | PE_FLAGS.LAZY },
];

test('writes the same bytes as the generic protobuf encoder', () => {
  const generic = encodeImage(
    PAGEMAP_IMAGE,
    entries.map((e) => ({ vaddr: e.vaddr.toString(), compat_nr_pages: 0, flags: e.flags, nr_pages: e.nrPages })),
    { head: { pages_id: 300 } },
  );
  expect(encodePagemapImage(300, entries).equals(generic)).toBe(true);
});

test('reads back through the image reader', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pagemap-'));
  try {
    writeFileSync(join(dir, 'pagemap-1.img'), encodePagemapImage(7, entries));
    const pagemap = await readPagemap(join(dir, 'pagemap-1.img'));
    expect(pagemap).toEqual({ pagesId: 7, ranges: entries });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
