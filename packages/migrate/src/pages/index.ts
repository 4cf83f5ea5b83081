// Post-copy page paths (docs/design/crash-safety.md section 4). Not wired into the engine yet: the post-copy and
// hash-pre-copy strategies use these once the engine is split into strategy modules.
export * from './ps-protocol';
export * from './link-frames';
export { LinkRequester, type LinkRequesterOptions, type LinkEvent } from './link-requester';
export { serveLink, type LinkResponderOptions, type LinkOutcome, type LinkStats } from './link-responder';
export * from './page-store';
export { PagePuller, DEFAULT_PULL_POLICY, type PullPolicy, type PullStats, type PageLink } from './page-puller';
export { serveDaemon, type DaemonGet, type DaemonHandler, type DaemonChannelOptions, type DaemonChannelResult } from './daemon-channel';
export { UffdProxy, LAZY_PAGES_SOCKET, LAZY_PAGES_RESTORE_FINISHED, type UffdProxyOptions } from './uffd-proxy';
export { FrozenSourceMemory, type FrozenSourceOptions } from './source-memory';
export { holdFrozen, finishLazyDump, releaseLazyDump, cgroupPids, type FinishLazyDumpOptions, type ReleaseLazyDumpOptions } from './source-hold';
export { PageRelay, LINK_SOCKET, type PageRelayOptions, type RelayEvent, type RelayReport } from './relay';
export { startRelayDaemon, adoptRelayDaemon, readDaemonRecord, type RelayDaemon, type DaemonRecord } from './relay-daemon';
export { runPageRelayProcess, spawnPageRelay, standbyPageRelay, type StandbyRelay, RELAY_CONFIG, RELAY_EVENTS, RELAY_REPORT, type RelayProcessConfig, type RelayOutcome, type SpawnedRelay } from './relay-process';
export { serveSourcePages, dialRelayOverSsh, type ServeSourcePagesOptions, type SourcePagesEvent } from './source-pages';
