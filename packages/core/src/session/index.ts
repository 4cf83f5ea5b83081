// Terminal sessions (tmux servers, shell jobs, shell sessions) checkpointed and restored with CRIU.
export {
  checkpointSession,
  parseSessionTarget,
  type SessionTarget,
  type SessionCheckpointOptions,
  type SessionCheckpointResult,
  type SessionCheckpointStats,
} from './session-checkpoint';
export { restoreSession, type SessionRestoreOptions, type SessionRestoreResult } from './session-restore';
export {
  planSessionDump,
  sessionDumpOptions,
  sessionRestoreOptions,
  type SessionKind,
  type SessionPlan,
  type TerminalMode,
} from './session-plan';
export {
  readSessionManifest,
  writeSessionManifest,
  validateSessionManifest,
  SESSION_MANIFEST_FILE,
  SESSION_MANIFEST_VERSION,
  type SessionManifest,
  type TmuxSocketRecord,
  type ListeningSocketRecord,
  type DirRecord,
} from './session-manifest';
export { Screen, parseScreenList, pickScreenSession, type ScreenSession, type ScreenList } from './screen';
export { TmuxServer, parseServerInfo, parseClients, type TmuxSocket, type TmuxRun, type TmuxClient, type TmuxServerInfo } from './tmux';
export {
  readProcessTree,
  readPtyUse,
  readUnixSockets,
  parseProcNetUnix,
  pidsInUse,
  parseProcStat,
  ptyIndexOfTtyNr,
  type TaskIds,
  type PtyUse,
  type UnixSocketEntry,
} from './proc-tree';
