import { FRAME_DATA, FRAME_DATA_END, FRAME_JSON, FrameDecoder, encodeFrame, encodeJson, type Frame } from './frames';

async function decodeAll(chunks: Buffer[]): Promise<Frame[]> {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  decoder.on('data', (f: Frame) => frames.push(f));
  const done = new Promise<void>((resolve, reject) => {
    decoder.on('end', resolve);
    decoder.on('error', reject);
  });
  for (const c of chunks) decoder.write(c);
  decoder.end();
  await done;
  return frames;
}

test('frames survive any split of the byte stream', async () => {
  const bytes = Buffer.concat([encodeJson({ hello: 1 }), encodeFrame(FRAME_DATA, Buffer.alloc(70_000, 7)), encodeFrame(FRAME_DATA_END)]);
  for (const size of [1, 3, 4096, bytes.length]) {
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
    const frames = await decodeAll(chunks);
    expect(frames.map((f) => f.kind)).toEqual([FRAME_JSON, FRAME_DATA, FRAME_DATA_END]);
    expect(JSON.parse(frames[0]!.payload.toString())).toEqual({ hello: 1 });
    expect(frames[1]!.payload.equals(Buffer.alloc(70_000, 7))).toBe(true);
  }
});

test('a truncated stream and an absurd length are errors', async () => {
  await expect(decodeAll([encodeJson({ a: 1 }).subarray(0, 7)])).rejects.toThrow(/ended inside a frame/);
  const bad = Buffer.alloc(5);
  bad.writeUInt32BE(0xffffffff, 0);
  await expect(decodeAll([bad])).rejects.toThrow(/bad frame length/);
});
