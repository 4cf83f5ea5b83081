import { CriuClient } from './criu-client';
import { nativeSocketPair } from './native-socket';

/** A CriuClient that talks to a real `criu swrk` over a native SEQPACKET socketpair. */
export function createCriuClient(options: { criuPath?: string } = {}): CriuClient {
  return new CriuClient({ criuPath: options.criuPath ?? 'criu', socketPair: nativeSocketPair });
}
