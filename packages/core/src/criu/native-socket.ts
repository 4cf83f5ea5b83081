/**
 * The MessageSocket the CRIU client uses in production: a SOCK_SEQPACKET pair from @ferry/native.
 */
import { seqpacketPair, type SeqpacketSocket } from '@ferry/native';
import type { MessageSocket, ReceivedMessage } from './message-socket';

class NativeMessageSocket implements MessageSocket {
  constructor(private readonly socket: SeqpacketSocket) {}

  get fd(): number {
    return this.socket.fd;
  }

  async send(data: Buffer, fds: readonly number[] = []): Promise<void> {
    await this.socket.send(data, fds);
  }

  async recv(): Promise<ReceivedMessage | null> {
    const message = await this.socket.recv();
    return message;
  }

  close(): void {
    this.socket.close();
  }
}

export function nativeSocketPair(): [MessageSocket, MessageSocket] {
  const [a, b] = seqpacketPair();
  return [new NativeMessageSocket(a), new NativeMessageSocket(b)];
}
