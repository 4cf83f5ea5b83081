/**
 * A fake CRIU for unit tests of the client's protocol logic: each session runs `script` on the far side of an
 * in-memory socket pair, with real protobuf encoding both ways.
 */
import type { RpcSession, StartSession } from '../criu/criu-client';
import { memorySocketPair } from '../criu/memory-socket';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type WireRequest, type WireResponse } from '../criu/rpc-codec';

export interface FakeCriuPeer {
  recv(): Promise<WireRequest | null>;
  send(response: WireResponse): Promise<void>;
}

export type CriuScript = (peer: FakeCriuPeer, sessionIndex: number) => Promise<void>;

export function scriptedCriu(script: CriuScript): { startSession: StartSession; requests: WireRequest[]; scriptErrors: unknown[] } {
  const requests: WireRequest[] = [];
  const scriptErrors: unknown[] = [];
  let sessions = 0;
  const startSession: StartSession = async () => {
    const [client, server] = memorySocketPair();
    const peer: FakeCriuPeer = {
      recv: async () => {
        const m = await server.recv();
        if (!m) return null;
        const request = decodeRequest(m.data);
        requests.push(request);
        return request;
      },
      send: (response) => server.send(encodeResponse(response)),
    };
    void script(peer, sessions++).catch((err: unknown) => scriptErrors.push(err)).finally(() => server.close());
    const session: RpcSession = {
      send: (request) => client.send(encodeRequest(request)),
      recv: async () => {
        const m = await client.recv();
        if (!m) throw Object.assign(new Error('fake criu closed the connection'), { code: 'ERR_CRIU_PROTOCOL' });
        return decodeResponse(m.data);
      },
      call: async (request) => {
        await session.send(request);
        return session.recv();
      },
      close: () => client.close(),
    };
    return session;
  };
  return { startSession, requests, scriptErrors };
}
