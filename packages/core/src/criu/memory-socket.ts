/**
 * An in-process MessageSocket pair for unit tests of protocol logic (no fds, no kernel).
 */
import type { MessageSocket, ReceivedMessage } from './message-socket';

class MemorySocket implements MessageSocket {
  peer!: MemorySocket;
  private readonly queue: (ReceivedMessage | null)[] = [];
  private readonly waiters: ((m: ReceivedMessage | null) => void)[] = [];
  private closed = false;
  readonly fd = -1;

  deliver(message: ReceivedMessage | null): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(message);
    else this.queue.push(message);
  }

  async send(data: Buffer, fds: readonly number[] = []): Promise<void> {
    if (this.closed) throw Object.assign(new Error('send on closed socket'), { code: 'EBADF' });
    this.peer.deliver({ data: Buffer.from(data), fds: fds.map((fd) => ({ fd, close: () => undefined })) });
  }

  recv(): Promise<ReceivedMessage | null> {
    if (this.queue.length > 0) return Promise.resolve(this.queue.shift() ?? null);
    if (this.closed) return Promise.resolve(null);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.peer.deliver(null);
    for (const waiter of this.waiters.splice(0)) waiter(null);
  }
}

export function memorySocketPair(): [MessageSocket, MessageSocket] {
  const a = new MemorySocket();
  const b = new MemorySocket();
  a.peer = b;
  b.peer = a;
  return [a, b];
}
