/**
 * Descriptors CRIU sends back (the orphan-pts-master notify) and CRIU's stdin: the client hands the master to
 * restore()'s caller, closes whatever nobody took, and passes `stdin` to the session it starts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriuClient, type RpcSession, type StartSession } from './criu-client';
import type { OwnedFd } from './message-socket';
import type { WireRequest, WireResponse } from './rpc-codec';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ferry-criu-fds-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

class FakeFd implements OwnedFd {
  closed = 0;
  constructor(readonly fd: number) {}
  close(): void {
    this.closed += 1;
  }
}

/** A session that answers every request from a fixed list of (response, fds) pairs. */
function fakeCriu(replies: { response: WireResponse; fds?: OwnedFd[] }[]): { startSession: StartSession; starts: Parameters<StartSession>[0][]; sent: WireRequest[] } {
  const starts: Parameters<StartSession>[0][] = [];
  const sent: WireRequest[] = [];
  const startSession: StartSession = async (options) => {
    starts.push(options);
    const queue = [...replies];
    const session: RpcSession = {
      send: async (request) => void sent.push(request),
      recv: async () => (await session.recvWithFds!()).response,
      recvWithFds: async () => {
        const next = queue.shift();
        if (!next) throw new Error('fake criu has nothing more to say');
        return { response: next.response, fds: next.fds ?? [] };
      },
      call: async (request) => {
        await session.send(request);
        return session.recv();
      },
      close: () => undefined,
    };
    return session;
  };
  return { startSession, starts, sent };
}

const notify = (script: string): WireResponse => ({ type: 'NOTIFY', success: true, notify: { script } });
const restored: WireResponse = { type: 'RESTORE', success: true, restore: { pid: 4242 } };

test('orphanPtsMaster: the master sent with the notify comes back with the result, owned by the caller', async () => {
  const master = new FakeFd(17);
  const criu = fakeCriu([{ response: notify('orphan-pts-master'), fds: [master] }, { response: restored }]);
  const client = new CriuClient({ criuPath: 'criu', startSession: criu.startSession });
  const result = await client.restore({ imagesDir: dir, orphanPtsMaster: true });
  expect(result.pid).toBe(4242);
  expect(result.orphanPtsMaster).toBe(master);
  expect(master.closed).toBe(0);
  // CRIU only sends the notify with notify_scripts on; the client answered it.
  expect(criu.sent[0]?.opts).toMatchObject({ orphan_pts_master: true, notify_scripts: true });
  expect(criu.sent[1]).toMatchObject({ type: 'NOTIFY', notify_success: true });
});

test('a failed restore closes the master it already received', async () => {
  const master = new FakeFd(17);
  const failed: WireResponse = { type: 'RESTORE', success: false, cr_errmsg: 'boom' };
  const criu = fakeCriu([{ response: notify('orphan-pts-master'), fds: [master] }, { response: failed }]);
  const client = new CriuClient({ criuPath: 'criu', startSession: criu.startSession });
  await expect(client.restore({ imagesDir: dir, orphanPtsMaster: true })).rejects.toMatchObject({ code: 'ERR_CRIU_RESTORE_FAILED' });
  expect(master.closed).toBe(1);
});

test('fds a notify handler does not take are closed; taken ones are the handler\'s', async () => {
  const left = new FakeFd(20);
  const taken = new FakeFd(21);
  const onFinal = new FakeFd(22);
  const criu = fakeCriu([
    { response: notify('pre-restore'), fds: [left] },
    { response: notify('post-restore'), fds: [taken] },
    { response: restored, fds: [onFinal] },
  ]);
  const client = new CriuClient({ criuPath: 'criu', startSession: criu.startSession });
  const kept: OwnedFd[] = [];
  await client.restore({ imagesDir: dir }, {
    onNotify: (script, _pid, fds) => {
      expect(fds.count).toBe(1);
      if (script === 'post-restore') kept.push(...fds.take());
      return true;
    },
  });
  expect(left.closed).toBe(1);
  expect(kept).toEqual([taken]);
  expect(taken.closed).toBe(0);
  expect(onFinal.closed).toBe(1);
});

test('stdin reaches the session that starts CRIU', async () => {
  const criu = fakeCriu([{ response: restored }]);
  const client = new CriuClient({ criuPath: 'criu', startSession: criu.startSession });
  await client.restore({ imagesDir: dir, shellJob: true }, { stdin: 0 });
  expect(criu.starts[0]).toMatchObject({ stdin: 0 });
});
