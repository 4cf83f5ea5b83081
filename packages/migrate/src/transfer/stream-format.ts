/**
 * The transfer stream: a POSIX tar archive (tar-stream) framed by ferry's own marker entries.
 *
 *   begin    {"format":1}              always first: a receiver refuses a stream it does not understand
 *   deleted  ["a/b", "c"]              optional, second: paths the receiver removes before writing anything
 *   ...      one entry per directory, file and symlink; the root is '.', parents come before children
 *   end      {"files":N,"bytes":B}     always last: without it the stream was cut short, whatever tar says
 *
 * A marker is an entry whose pax header carries FERRY.kind (a vendor keyword, as POSIX pax allows): no file name can
 * collide with one. Sub-second mtimes and ids above ustar's 0o777777 travel as the standard pax keywords mtime, uid
 * and gid.
 */
import type { Header } from 'tar-stream';

/** What tar-stream's pack takes and extract gives, with the pax records it keeps (its types leave them unknown). */
export type TarHeader = Partial<Omit<Header, 'pax'>> & { name: string; pax?: Record<string, string> | null };

export const TRANSFER_FORMAT = 1;

/** File data moves in chunks of this size (fs streams, fs writes, tar-stream buffers): see LAB.md. */
export const CHUNK_BYTES = 1 << 20;

/** A marker's body is read into memory; a larger one is refused. */
export const MAX_MARKER_BYTES = 64 << 20;

export const PAX_KIND = 'FERRY.kind';

export type MarkerKind = 'begin' | 'deleted' | 'end';

export interface BeginMarker {
  format: number;
}

export interface EndMarker {
  files: number;
  bytes: number;
}

/** ustar's numeric id fields hold 6 octal digits; larger ids go into pax. */
const USTAR_MAX_ID = 0o777777;
/** ustar's mtime field holds 11 octal digits of seconds (and tar-stream encodes it through a 32-bit int). */
const USTAR_MAX_SECONDS = 0x7fffffff;

export function markerHeader(kind: MarkerKind, size: number): TarHeader {
  return { name: `.ferry-${kind}`, type: 'file', mode: 0o600, size, mtime: new Date(0), pax: { [PAX_KIND]: kind } };
}

export function markerKind(header: TarHeader): string | undefined {
  return header.pax?.[PAX_KIND];
}

export interface EntryMeta {
  mode: number;
  uid: number;
  gid: number;
  mtimeNs: bigint;
}

/** Header fields plus the pax records that carry what ustar cannot: exact mtime, large ids. */
export function metaHeader(name: string, meta: EntryMeta): TarHeader {
  const pax: Record<string, string> = {};
  const seconds = meta.mtimeNs / 1_000_000_000n;
  const nanos = meta.mtimeNs % 1_000_000_000n;
  const ustarSeconds = Number(seconds);
  if (nanos !== 0n || meta.mtimeNs < 0n || ustarSeconds > USTAR_MAX_SECONDS) pax.mtime = formatPaxTime(meta.mtimeNs);
  if (meta.uid > USTAR_MAX_ID) pax.uid = String(meta.uid);
  if (meta.gid > USTAR_MAX_ID) pax.gid = String(meta.gid);
  const header: TarHeader = {
    name,
    // The full st_mode: tar-stream replaces a mode of 0 by 0o644, and a file with mode 000 must stay 000.
    mode: meta.mode,
    uid: Math.min(meta.uid, USTAR_MAX_ID),
    gid: Math.min(meta.gid, USTAR_MAX_ID),
    mtime: new Date(Math.min(Math.max(ustarSeconds, 0), USTAR_MAX_SECONDS) * 1000),
  };
  if (Object.keys(pax).length > 0) header.pax = pax;
  return header;
}

function formatPaxTime(ns: bigint): string {
  const sign = ns < 0n ? '-' : '';
  const abs = ns < 0n ? -ns : ns;
  return `${sign}${abs / 1_000_000_000n}.${(abs % 1_000_000_000n).toString().padStart(9, '0')}`;
}

export interface DecodedMeta {
  /** Permission bits only. */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch, as fs.utimes takes them (sub-microsecond precision is lost there). */
  mtimeSeconds: number;
}

export function decodeMeta(header: TarHeader): DecodedMeta {
  const pax = header.pax;
  const paxNumber = (key: string): number | undefined => {
    const value = pax?.[key];
    if (value === undefined) return undefined;
    const n = Number(value);
    return Number.isFinite(n) ? n : undefined;
  };
  return {
    mode: (header.mode ?? 0) & 0o7777,
    uid: paxNumber('uid') ?? header.uid ?? 0,
    gid: paxNumber('gid') ?? header.gid ?? 0,
    mtimeSeconds: paxNumber('mtime') ?? (header.mtime ? header.mtime.getTime() / 1000 : 0),
  };
}
