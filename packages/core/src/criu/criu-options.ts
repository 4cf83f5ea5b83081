/**
 * Typed CRIU options (CRIU's own words, camelCase) and their translation to RPC `criu_opts`.
 */
import { CG_MODE, NETWORK_LOCK, PRE_DUMP_MODE } from './rpc-schema';
import type { WireOpts } from './rpc-codec';

export type ManageCgroupsMode = 'ignore' | 'none' | 'props' | 'soft' | 'full' | 'strict';
export type LogLevel = 0 | 1 | 2 | 3 | 4;

export interface CriuCommonOptions {
  /** Directory holding the images. Must exist; ferry creates image directories 0700. */
  imagesDir: string;
  /** Where CRIU writes its log and temporary files; defaults to imagesDir. */
  workDir?: string;
  /** Log file name inside workDir (CRIU allows no subdirectories). */
  logFile?: string;
  logLevel?: LogLevel;
  tcpEstablished?: boolean;
  tcpClose?: boolean;
  fileLocks?: boolean;
  extUnixSk?: boolean;
  shellJob?: boolean;
  linkRemap?: boolean;
  manageCgroups?: boolean;
  manageCgroupsMode?: ManageCgroupsMode;
  /** `--external` keys, e.g. `mnt[/proc/sys]:sys` or `net[4026532008]:extnet`. */
  external?: readonly string[];
  /** External bind mounts: key is the mountpoint (dump) / value the host path (restore). */
  externalMounts?: readonly { key: string; value: string }[];
  autoExtMnt?: boolean;
  orphanPtsMaster?: boolean;
  networkLock?: 'iptables' | 'nftables' | 'skip';
  /** Seconds CRIU may wait for the tree to freeze or for its own steps. */
  timeoutSec?: number;
  /** Page server to send pages to (dump/pre-dump) or to listen on (page server). */
  pageServer?: { address?: string; port?: number; fd?: number };
  lazyPages?: boolean;
}

export interface CriuDumpOptions extends CriuCommonOptions {
  pid: number;
  leaveRunning?: boolean;
  leaveStopped?: boolean;
  trackMem?: boolean;
  /** Parent image directory, relative to imagesDir (CRIU resolves it from there). */
  parentImage?: string;
  freezeCgroup?: string;
  autoDedup?: boolean;
  preDumpMode?: 'splice' | 'vm-read';
}

export interface CriuRestoreOptions extends CriuCommonOptions {
  /** Restore the tree as a child of criu swrk rather than of init (needed to get the exit of restored tasks). */
  restoreSibling?: boolean;
  root?: string;
  inheritFds?: readonly { key: string; fd: number }[];
  joinNamespaces?: readonly { ns: string; nsFile: string; extraOpt?: string }[];
  mntnsCompatMode?: boolean;
  /** Keep the restored tree stopped (SIGSTOP) instead of resuming it. */
  leaveStopped?: boolean;
}

const CG_MODES: Record<ManageCgroupsMode, number> = {
  ignore: CG_MODE.IGNORE,
  none: CG_MODE.CG_NONE,
  props: CG_MODE.PROPS,
  soft: CG_MODE.SOFT,
  full: CG_MODE.FULL,
  strict: CG_MODE.STRICT,
};

export const DEFAULT_LOG_LEVEL: LogLevel = 4;

/** Fields shared by every request that works on images. `imagesDirFd` / `workDirFd` are open in this process. */
export function commonWireOpts(options: CriuCommonOptions, fds: { imagesDirFd: number; workDirFd: number }): WireOpts {
  const wire: WireOpts = {
    images_dir_fd: fds.imagesDirFd,
    work_dir_fd: fds.workDirFd,
    log_level: options.logLevel ?? DEFAULT_LOG_LEVEL,
  };
  if (options.logFile) wire.log_file = options.logFile;
  setIf(wire, 'tcp_established', options.tcpEstablished);
  setIf(wire, 'tcp_close', options.tcpClose);
  setIf(wire, 'file_locks', options.fileLocks);
  setIf(wire, 'ext_unix_sk', options.extUnixSk);
  setIf(wire, 'shell_job', options.shellJob);
  setIf(wire, 'link_remap', options.linkRemap);
  setIf(wire, 'manage_cgroups', options.manageCgroups);
  setIf(wire, 'auto_ext_mnt', options.autoExtMnt);
  setIf(wire, 'orphan_pts_master', options.orphanPtsMaster);
  setIf(wire, 'lazy_pages', options.lazyPages);
  if (options.manageCgroupsMode) wire.manage_cgroups_mode = CG_MODES[options.manageCgroupsMode];
  const external = [
    ...(options.external ?? []),
    ...(options.externalMounts ?? []).map((m) => `mnt[${m.key}]:${m.value}`),
  ];
  if (external.length > 0) wire.external = external;
  if (options.networkLock) wire.network_lock = NETWORK_LOCK[options.networkLock.toUpperCase() as 'IPTABLES'];
  if (options.timeoutSec !== undefined) wire.timeout = options.timeoutSec;
  if (options.pageServer) wire.ps = { ...options.pageServer };
  return wire;
}

/** CRIU's criu_opts for a dump (or pre-dump) request; the caller owns the image and work dir fds. */
export function dumpWireOpts(options: CriuDumpOptions, fds: { imagesDirFd: number; workDirFd: number }): WireOpts {
  const wire = commonWireOpts(options, fds);
  wire.pid = options.pid;
  setIf(wire, 'leave_running', options.leaveRunning);
  setIf(wire, 'leave_stopped', options.leaveStopped);
  setIf(wire, 'track_mem', options.trackMem);
  setIf(wire, 'auto_dedup', options.autoDedup);
  if (options.parentImage) wire.parent_img = options.parentImage;
  if (options.freezeCgroup) wire.freeze_cgroup = options.freezeCgroup;
  if (options.preDumpMode) wire.pre_dump_mode = options.preDumpMode === 'splice' ? PRE_DUMP_MODE.SPLICE : PRE_DUMP_MODE.VM_READ;
  return wire;
}

/** CRIU's criu_opts for a restore request; the caller owns the image and work dir fds. */
export function restoreWireOpts(options: CriuRestoreOptions, fds: { imagesDirFd: number; workDirFd: number }): WireOpts {
  const wire = commonWireOpts(options, fds);
  setIf(wire, 'rst_sibling', options.restoreSibling);
  setIf(wire, 'mntns_compat_mode', options.mntnsCompatMode);
  setIf(wire, 'leave_stopped', options.leaveStopped);
  if (options.root) wire.root = options.root;
  if (options.inheritFds?.length) wire.inherit_fd = options.inheritFds.map((i) => ({ key: i.key, fd: i.fd }));
  if (options.joinNamespaces?.length) {
    wire.join_ns = options.joinNamespaces.map((j) => ({ ns: j.ns, ns_file: j.nsFile, extra_opt: j.extraOpt }));
  }
  return wire;
}

function setIf(wire: WireOpts, key: string, value: boolean | undefined): void {
  if (value !== undefined) wire[key] = value;
}
