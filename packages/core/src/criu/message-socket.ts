/**
 * What the CRIU client needs from a SOCK_SEQPACKET socket. Declared here, where it is consumed; the real
 * implementation comes from @ferry/native, tests may hand in an in-memory pair.
 */
export interface OwnedFd {
  readonly fd: number;
  close(): void;
}

export interface ReceivedMessage {
  data: Buffer;
  /** Descriptors that arrived with the message; the receiver owns them and must close them. */
  fds: OwnedFd[];
}

export interface MessageSocket {
  /** The raw descriptor, for handing the peer end to a child process. */
  readonly fd: number;
  send(data: Buffer, fds?: readonly number[]): Promise<void>;
  /** Resolves null when the peer has closed its end (for CRIU: the criu process exited). */
  recv(): Promise<ReceivedMessage | null>;
  close(): void;
}

export type MessageSocketPairFactory = () => [MessageSocket, MessageSocket];
