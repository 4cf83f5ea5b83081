/**
 * The format of recorded `criu swrk` conversations (src/criu/recorded/*.json, written by tools/record-swrk.ts and
 * read by rpc-codec.recorded.test.ts), and the socket tee that records them: every message's bytes are copied on
 * their way out (requests) and in (responses).
 */
import type { MessageSocket, MessageSocketPairFactory, ReceivedMessage } from './message-socket';

export const RECORDING_FORMAT = 'ferry-criu-rpc-recording/1';

export interface RecordedMessage {
  /** request: ferry -> CRIU; response: CRIU -> ferry (NOTIFY messages from CRIU are responses too). */
  direction: 'request' | 'response';
  /** The criu_req_type of the message, read from the raw bytes' field 1 (not through ferry's schema). */
  type: string;
  /** The message exactly as it crossed the socket, in hex. */
  hex: string;
}

export interface Recording {
  format: typeof RECORDING_FORMAT;
  /** What was recorded, e.g. "dump". */
  session: string;
  description: string;
  /** `criu --version` as CRIU itself reported it over RPC in the same recording run. */
  criuVersion: string;
  kernel: string;
  recordedAt: string;
  messages: RecordedMessage[];
}

const TYPE_NAMES = [
  'EMPTY', 'DUMP', 'RESTORE', 'CHECK', 'PRE_DUMP', 'PAGE_SERVER', 'NOTIFY', 'CPUINFO_DUMP', 'CPUINFO_CHECK',
  'FEATURE_CHECK', 'VERSION', 'WAIT_PID', 'PAGE_SERVER_CHLD', 'SINGLE_PRE_DUMP',
];

/**
 * criu_req.type and criu_resp.type are field 1 (varint). protobuf-c and protobufjs both write fields in number
 * order, so it comes first; this reads it without ferry's schema, so the fixture's label is independent of the
 * code it tests.
 */
export function rawMessageType(bytes: Uint8Array): string {
  if (bytes[0] !== 0x08) throw new Error(`message does not start with field 1 (varint): first byte ${bytes[0]}`);
  let value = 0;
  for (let i = 1, shift = 0; i < bytes.length && shift < 35; i++, shift += 7) {
    const byte = bytes[i]!;
    value |= (byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return TYPE_NAMES[value] ?? `UNKNOWN_${value}`;
  }
  throw new Error('truncated varint in field 1');
}

/** A MessageSocketPairFactory whose first socket (ferry's end) copies every message into `log`. */
export function teeSocketPair(inner: MessageSocketPairFactory, log: RecordedMessage[]): MessageSocketPairFactory {
  const note = (direction: RecordedMessage['direction'], data: Buffer) =>
    log.push({ direction, type: rawMessageType(data), hex: Buffer.from(data).toString('hex') });
  return () => {
    const [mine, theirs] = inner();
    const tee: MessageSocket = {
      get fd() {
        return mine.fd;
      },
      async send(data: Buffer, fds?: readonly number[]) {
        note('request', data);
        await mine.send(data, fds);
      },
      async recv(): Promise<ReceivedMessage | null> {
        const message = await mine.recv();
        if (message) note('response', message.data);
        return message;
      },
      close: () => mine.close(),
    };
    return [tee, theirs];
  };
}
