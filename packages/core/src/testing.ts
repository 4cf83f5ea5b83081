/** Fakes and helpers for other packages' tests. */
export { memorySocketPair } from './criu/memory-socket';
export { buildFixture, FIXTURES_DIR } from './testing/fixtures';
export * from './testing/workload';
export { scriptedCriu, type CriuScript, type FakeCriuPeer } from './testing/scripted-criu';
export * from './testing/runc-container';
export * from './testing/slow-start';
export * from './testing/cleanups';
export { rejection } from './testing/rejection';
export { sampleSessionManifest } from './testing/session-fixtures';
export * from './testing/lxc-container';
export * from './testing/docker-daemon';
export { createNetns, deleteNetns, netnsPath } from './runtime/runc-netns';
export * from './testing/netns-lab';
export { FakeRuntime, type FakeCall } from './testing/fake-runtime';
// For tools/record-swrk.ts: CRIU's socket pair as production uses it, the request decoder, the recording format.
export { nativeSocketPair } from './criu/native-socket';
export { decodeRequest } from './criu/rpc-codec';
export * from './criu/rpc-recording';
export * from './testing/podman';
