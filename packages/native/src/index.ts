// @ferry/native: Linux primitives Node lacks, behind a checked TypeScript API. No CRIU words here (STYLE.md).
// Ownership: every fd is inside an FdHandle or SeqpacketSocket that closes it; every native failure is a NativeError.
export { NativeError, type NativeErrorDetails } from './native-error';
export { FdHandle } from './fd-handle';
export {
  SeqpacketSocket,
  seqpacketPair,
  type SeqpacketMessage,
  type SeqpacketPairOptions,
  type RecvOptions,
} from './seqpacket';
export { listMemoryRegions, parseMaps, type MemoryRange, type MemoryRegion } from './memory-regions';
export { readMemory, allocPageAligned, type ReadMemoryOptions, type MemoryReadResult } from './vm-read';
export { PAGE_SIZE, hashPages, findZeroPages, type HashPagesOptions, type PageHashes } from './page-hash';
export {
  PageFlag,
  readPagemap,
  findPresentRanges,
  type Pagemap,
  type PagemapMethod,
  type PagemapOptions,
  type PresentRangesOptions,
} from './pagemap';
export { pidfdOpen, pidfdSendSignal, pidfdGetfd } from './pidfd';
export { createNetns, socketInNetns, createSocket, type SocketFamily, type SocketType, type SocketInNetnsOptions } from './netns';
export {
  streamSocketPair,
  listenUnix,
  acceptSocket,
  connectSocket,
  socketName,
  socketQueues,
  tcpCounters,
  setSendBuffer,
  tcpLoopbackPair,
  tcpNoDelay,
  type SocketName,
  type TcpCounters,
} from './sockets';
export { StreamSocket, type StreamChunk, type StreamReadOptions } from './stream-socket';
export { leaveTcpRepair, resetOnClose } from './tcp-repair';
export { gatherFiles, scatterFiles, type FdRange } from './file-gather';
export type { ByteArray } from './validate';
export { NfQueue, NfVerdict, NfInetHook, type NfQueueOptions, type QueuedPacket, type NfVerdictValue } from './nfqueue';
export { Userfaultfd, pollUffds, decodeUffdMessages, UFFD_MSG_SIZE, type UffdMessage, type UffdResult } from './userfaultfd';
