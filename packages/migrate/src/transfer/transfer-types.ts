/** Types shared by snapshotDir, diffSnapshots, packDir and unpackDir. */

export type SnapshotEntryType = 'file' | 'dir' | 'symlink';

export interface SnapshotEntry {
  /** Relative to the snapshot's root, '/'-separated; the root itself is '.'. */
  path: string;
  type: SnapshotEntryType;
  /** Permission bits with setuid, setgid and sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes for files, the target's length for symlinks, 0 for directories. */
  size: number;
  mtimeMs: number;
  /**
   * The inode's change time. It cannot be set from user space, so it catches what mtime misses (chmod, chown, a file
   * renamed over another, content rewritten with its mtime restored). Local to one host: never compare it across hosts.
   */
  ctimeMs: number;
  /** The symlink's target, verbatim (absolute targets such as /bin/busybox are normal in a rootfs). */
  linkTarget?: string;
}

export type SkipReason = 'special-file' | 'non-utf8-name';

export interface SkippedEntry {
  /** For 'non-utf8-name', the name decoded with replacement characters (it cannot be represented exactly). */
  path: string;
  reason: SkipReason;
  /** What it is: 'character-device', 'block-device', 'fifo', 'socket', or the type of a badly named entry. */
  kind: string;
}

export interface DirSnapshot {
  /** The directory's real path (symlinks resolved) when the snapshot was taken. */
  root: string;
  /** Wall clock when the walk began: entries changed shortly before it may change again unseen (see diffSnapshots). */
  startedAtMs: number;
  /** Every file, directory and symlink, the root first, parents before children, names sorted. */
  entries: SnapshotEntry[];
  /** What a transfer leaves behind (device nodes, fifos, sockets, names that are not UTF-8). */
  skipped: SkippedEntry[];
}

/** Structurally a MigrationEvent 'warning' (core/src/model/events.ts), so callers can forward it as is. */
export interface TransferWarning {
  type: 'warning';
  message: string;
  reason: SkipReason;
  path: string;
}

export type TransferEvent = TransferWarning;

export interface TransferStats {
  /** Entries sent or written: regular files, directories (the root included) and symlinks. */
  files: number;
  /** Bytes of regular-file content. */
  bytes: number;
}
