/**
 * Framing of CRIU's protobuf images: the magic header (see image-magic.ts), then entries, each a 32-bit
 * little-endian length followed by that many bytes of protobuf. Some image types put a different message first
 * (pagemap_head) or raw data after an entry (pipes-data, tcp-stream); an ImageSpec says which.
 *
 * Whole files are read into memory: protobuf images are small (kilobytes per task). The big ones, pages-N.img,
 * are raw and never go through this reader.
 */
import { readFile } from 'node:fs/promises';
import type * as protobuf from 'protobufjs';
import { imageCorrupt, imageNotFound, isErrno } from './image-errors';
import { hex32, IMG_COMMON_MAGIC, IMG_SERVICE_MAGIC, type ImageKind } from './image-magic';

/** A decoded message with CRIU's snake_case field names; 64-bit integers are decimal strings. */
export type WireObject = Record<string, unknown>;

export interface ImageSpec {
  kind: ImageKind;
  /** The message of the first entry, when it differs from the rest (pagemap_head). */
  head?: protobuf.Type;
  entry: protobuf.Type;
  /** Number of raw bytes that follow an entry (e.g. pipes-data's `bytes`); 0 when absent. */
  payloadBytes?: (entry: WireObject) => number;
}

export interface ImageEntry {
  /** Offset of the entry's length prefix in the file, for error messages and tools. */
  offset: number;
  value: WireObject;
  payload?: Buffer;
}

export interface ImageContents {
  path: string;
  kind: ImageKind;
  /** True for images written before format v1.1, which lack the set magic. */
  oldFormat: boolean;
  head?: ImageEntry;
  entries: ImageEntry[];
}

const LENGTH_BYTES = 4;

/** Reads and decodes one image file. Throws ERR_IMAGE_NOT_FOUND if it is missing, ERR_IMAGE_CORRUPT if malformed. */
export async function readImageEntries(path: string, spec: ImageSpec): Promise<ImageContents> {
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) throw imageNotFound(path, `no ${spec.kind.name} image`, err);
    throw imageCorrupt(path, `cannot read the image: ${(err as Error).message}`, {}, err);
  }
  return decodeImage(data, path, spec);
}

/** The pure half of readImageEntries: decodes a whole image held in memory. `path` is only used in errors. */
export function decodeImage(data: Buffer, path: string, spec: ImageSpec): ImageContents {
  const { offset: start, oldFormat } = checkMagic(data, path, spec.kind);
  const contents: ImageContents = { path, kind: spec.kind, oldFormat, entries: [] };
  let offset = start;
  while (offset < data.length) {
    const entryOffset = offset;
    if (data.length - offset < LENGTH_BYTES) {
      throw imageCorrupt(path, `truncated entry length at offset ${offset}`, { offset });
    }
    const size = data.readUInt32LE(offset);
    offset += LENGTH_BYTES;
    if (data.length - offset < size) {
      throw imageCorrupt(path, `entry at offset ${entryOffset} declares ${size} bytes but only ${data.length - offset} remain`, {
        offset: entryOffset,
      });
    }
    const isHead = spec.head !== undefined && contents.head === undefined;
    const type = isHead ? spec.head! : spec.entry;
    const value = decodeMessage(type, data.subarray(offset, offset + size), path, entryOffset);
    offset += size;
    const entry: ImageEntry = { offset: entryOffset, value };
    const extra = isHead ? 0 : (spec.payloadBytes?.(value) ?? 0);
    if (extra > 0) {
      if (data.length - offset < extra) {
        throw imageCorrupt(path, `payload of the entry at offset ${entryOffset} needs ${extra} bytes but only ${data.length - offset} remain`, {
          offset: entryOffset,
        });
      }
      entry.payload = data.subarray(offset, offset + extra);
      offset += extra;
    }
    if (isHead) contents.head = entry;
    else contents.entries.push(entry);
  }
  return contents;
}

function checkMagic(data: Buffer, path: string, kind: ImageKind): { offset: number; oldFormat: boolean } {
  const setMagic = kind.set === 'common' ? IMG_COMMON_MAGIC : kind.set === 'service' ? IMG_SERVICE_MAGIC : undefined;
  const headerBytes = setMagic === undefined ? 4 : 8;
  if (data.length < 4) throw imageCorrupt(path, `file too short for a ${kind.name} image header (${data.length} bytes)`, { offset: 0 });
  const first = data.readUInt32LE(0);
  if (setMagic === undefined || first !== setMagic) {
    // Format v1 images (before v1.1) start directly with the image magic.
    if (first === kind.magic) return { offset: 4, oldFormat: setMagic !== undefined };
    const expected = setMagic === undefined ? hex32(kind.magic) : `${hex32(setMagic)} ${hex32(kind.magic)}`;
    throw imageCorrupt(path, `bad magic ${hex32(first)} at offset 0: not a ${kind.name} image (expected ${expected})`, {
      offset: 0,
      magic: first,
    });
  }
  if (data.length < headerBytes) throw imageCorrupt(path, `file too short for a ${kind.name} image header (${data.length} bytes)`, { offset: 0 });
  const second = data.readUInt32LE(4);
  if (second !== kind.magic) {
    throw imageCorrupt(path, `bad magic ${hex32(second)} at offset 4: not a ${kind.name} image (expected ${hex32(kind.magic)})`, {
      offset: 4,
      magic: second,
    });
  }
  return { offset: headerBytes, oldFormat: false };
}

function decodeMessage(type: protobuf.Type, bytes: Buffer, path: string, offset: number): WireObject {
  try {
    return type.toObject(type.decode(bytes), { longs: String, defaults: false }) as WireObject;
  } catch (err) {
    throw imageCorrupt(path, `entry at offset ${offset} is not a valid ${type.name}: ${(err as Error).message}`, { offset }, err);
  }
}

/**
 * Builds an image in CRIU's format (v1.1 header). Used by tests to make synthetic images, and usable for images
 * ferry writes itself. Entries are checked against the schema first.
 */
export function encodeImage(spec: ImageSpec, entries: readonly WireObject[], options: { head?: WireObject; payloads?: readonly (Buffer | undefined)[] } = {}): Buffer {
  const parts: Buffer[] = [];
  const u32 = (value: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(value >>> 0);
    return b;
  };
  if (spec.kind.set !== 'none') parts.push(u32(spec.kind.set === 'common' ? IMG_COMMON_MAGIC : IMG_SERVICE_MAGIC));
  parts.push(u32(spec.kind.magic));
  const frame = (type: protobuf.Type, value: WireObject) => {
    const unknown = Object.keys(value).filter((key) => !type.fields[key]);
    if (unknown.length > 0) throw new TypeError(`${type.name} has no field ${unknown.join(', ')}`);
    const msg = type.fromObject(value); // accepts 64-bit values as decimal strings, like the decoder returns them
    const problem = type.verify(msg);
    if (problem) throw new TypeError(`invalid ${type.name}: ${problem}`);
    const bytes = type.encode(msg).finish();
    parts.push(u32(bytes.length), Buffer.from(bytes));
  };
  if (spec.head) {
    if (!options.head) throw new TypeError(`${spec.kind.name} images need a head entry`);
    frame(spec.head, options.head);
  }
  entries.forEach((entry, i) => {
    frame(spec.entry, entry);
    const payload = options.payloads?.[i];
    if (payload) parts.push(payload);
  });
  return Buffer.concat(parts);
}
