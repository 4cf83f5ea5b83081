/** Fakes and helpers for other packages' tests. */
export { memorySocketPair } from './criu/memory-socket';
export { buildFixture, FIXTURES_DIR } from './testing/fixtures';
export * from './testing/workload';
export { scriptedCriu, type CriuScript, type FakeCriuPeer } from './testing/scripted-criu';
export * from './testing/runc-container';
export * from './testing/slow-start';
export * from './testing/cleanups';
export * from './testing/lxc-container';
export * from './testing/docker-daemon';
export * from './testing/lazy-source';
