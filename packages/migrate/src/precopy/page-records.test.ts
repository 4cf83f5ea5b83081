import { encodeRecordHeader, PageRecordDecoder, RecordKind, type PageRecord } from './page-records';

const stream = Buffer.concat([
  encodeRecordHeader(RecordKind.DATA, 1, 0x1000n, 2),
  Buffer.alloc(8192, 0xab),
  encodeRecordHeader(RecordKind.ZERO, 1, 0x9000n, 3),
  encodeRecordHeader(RecordKind.DATA, 42, 0x7fff0000n, 1),
  Buffer.alloc(4096, 0xcd),
]);

test('decodes records whatever the chunking', () => {
  for (const size of [1, 7, 24, 4096, 5000, stream.length]) {
    const decoder = new PageRecordDecoder();
    const got: PageRecord[] = [];
    for (let i = 0; i < stream.length; i += size) decoder.push(stream.subarray(i, i + size), (r) => got.push(r));
    decoder.end();
    expect(got.map((r) => [r.kind, r.task, r.vaddr, r.pages, r.data?.[0], r.data?.length])).toEqual([
      [RecordKind.DATA, 1, 0x1000n, 2, 0xab, 8192],
      [RecordKind.ZERO, 1, 0x9000n, 3, undefined, undefined],
      [RecordKind.DATA, 42, 0x7fff0000n, 1, 0xcd, 4096],
    ]);
  }
});

test('rejects a stream cut inside a record, an unknown kind and an unaligned address', () => {
  const cut = new PageRecordDecoder();
  cut.push(stream.subarray(0, 100), () => undefined);
  expect(() => cut.end()).toThrow(expect.objectContaining({ code: 'ERR_AGENT_PROTOCOL' }));
  const bad = encodeRecordHeader(RecordKind.DATA, 1, 0x1000n, 1);
  bad.writeUInt32LE(9, 0);
  expect(() => new PageRecordDecoder().push(bad, () => undefined)).toThrow(/unknown record kind 9/);
  const unaligned = encodeRecordHeader(RecordKind.ZERO, 1, 0x1000n, 1);
  unaligned.writeBigUInt64LE(0x1001n, 8);
  expect(() => new PageRecordDecoder().push(unaligned, () => undefined)).toThrow(/unaligned/);
});
