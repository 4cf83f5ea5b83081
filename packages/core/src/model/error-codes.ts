/**
 * Every error code ferry can report, in one place. Codes are stable: scripts match on them, and the CLI maps
 * each family to an exit code (see packages/cli/src/exit-codes.ts).
 */
export const ERROR_CODES = [
  // Preconditions checked before anything is frozen.
  'ERR_PRECHECK_NOT_ROOT',
  'ERR_PRECHECK_CRIU_MISSING',
  'ERR_PRECHECK_CRIU_TOO_OLD',
  'ERR_PRECHECK_CRIU_CHECK_FAILED',
  'ERR_PRECHECK_FEATURE_MISSING',
  'ERR_PRECHECK_BAD_INPUT',
  'ERR_PRECHECK_SAME_HOST',
  'ERR_PRECHECK_INCOMPATIBLE',
  /** A container configuration CRIU cannot dump (a terminal, stdio on host files). */
  'ERR_PRECHECK_UNSUPPORTED_CONFIG',
  'ERR_PRECHECK_CLONE_CONFLICT',
  /** The container needs files outside what ferry copies (a rootfs or bind mount source outside its bundle). */
  'ERR_PRECHECK_STORAGE_NOT_COPIED',
  /** Another move of the same container holds its lock (or was interrupted and awaits `ferry recover`). */
  'ERR_PRECHECK_MOVE_IN_PROGRESS',
  /** The destination has less free disk than the move will write there. */
  'ERR_PRECHECK_DISK_SPACE',
  /** A path ferry reads or writes is a symlink, a special file or a non-empty directory it did not expect. */
  'ERR_PRECHECK_UNSAFE_PATH',
  /** ferry's root lacks a capability CRIU needs for this container (CAP_SYS_RESOURCE for another user's rlimits). */
  'ERR_PRECHECK_CAPABILITY_MISSING',
  // CRIU itself.
  'ERR_CRIU_SPAWN_FAILED',
  'ERR_CRIU_PROTOCOL',
  'ERR_CRIU_DUMP_FAILED',
  'ERR_CRIU_PRE_DUMP_FAILED',
  'ERR_CRIU_RESTORE_FAILED',
  'ERR_CRIU_PAGE_SERVER_FAILED',
  'ERR_CRIU_CHECK_FAILED',
  'ERR_CRIU_CPUINFO_FAILED',
  'ERR_CRIU_REQUEST_FAILED',
  'ERR_CRIU_TIMEOUT',
  'ERR_CRIU_NOTIFY_HANDLER_FAILED',
  // Freezer (cgroup v1 freezer or cgroup v2 cgroup.freeze).
  'ERR_FREEZER_UNAVAILABLE',
  'ERR_FREEZER_TIMEOUT',
  'ERR_FREEZER_FAILED',
  // Images on disk.
  'ERR_IMAGE_NOT_FOUND',
  'ERR_IMAGE_CORRUPT',
  // Container runtimes.
  'ERR_RUNTIME_NOT_FOUND',
  'ERR_RUNTIME_NOT_RUNNING',
  'ERR_RUNTIME_UNAVAILABLE',
  'ERR_RUNTIME_FAILED',
  'ERR_RUNTIME_NAME_TAKEN',
  // A container's network during a switch-over (the NFQUEUE packet hold).
  'ERR_NETWORK_HOLD_FAILED',
  /** release() of a hold that was aborted: its packets were dropped, nothing can be delivered any more. */
  'ERR_NETWORK_HOLD_ABORTED',
  // Between hosts.
  'ERR_TRANSPORT_CONNECT_FAILED',
  'ERR_TRANSPORT_HOST_KEY_UNKNOWN',
  'ERR_TRANSPORT_HOST_KEY_CHANGED',
  'ERR_TRANSPORT_AUTH_FAILED',
  'ERR_TRANSPORT_CLOSED',
  'ERR_TRANSPORT_UNKNOWN_HOST',
  'ERR_AGENT_MISSING',
  'ERR_AGENT_PROTOCOL',
  'ERR_AGENT_FAILED',
  'ERR_ROLLBACK_FAILED',
  /** The process that drives a move (`ferry guardian`) could not start, or ended without a result. */
  'ERR_GUARDIAN_FAILED',
  /** A move past its commit request whose outcome the destination cannot be asked about: the source stays held. */
  'ERR_MOVE_IN_DOUBT',
  // Host drains: some containers moved, some did not (each one's error is reported).
  'ERR_DRAIN_INCOMPLETE',
  // A record ferry keeps on this host (drain history, replication status, a replica's metadata) cannot be read.
  'ERR_STATE_CORRUPT',
  // Native primitives surfaced as ferry errors.
  'ERR_NATIVE_FAILED',
  // The user interrupted.
  'ERR_ABORTED',
  /** FERRY_FAULT made this step fail (tests of the recovery paths). */
  'ERR_FAULT_INJECTED',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** True when `value` is one of ferry's error codes. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}
