import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { scriptedCriu, type FakeCriuPeer } from '../testing/scripted-criu';
import { CriuClient, type NotifyScript } from './criu-client';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-client-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Plays CRIU's side of a dump: notifications in order, then the final answer. */
async function playDump(peer: FakeCriuPeer, scripts: string[], final: (answers: boolean[]) => { success: boolean; cr_errmsg?: string }) {
  const request = await peer.recv();
  expect(request?.type).toBe('DUMP');
  const answers: boolean[] = [];
  for (const script of scripts) {
    await peer.send({ type: 'NOTIFY', success: true, notify: { script, pid: 42 } });
    const answer = await peer.recv();
    expect(answer?.type).toBe('NOTIFY');
    answers.push(answer?.notify_success === true);
    if (!answer?.notify_success) break;
  }
  await peer.send({ type: 'DUMP', ...final(answers) });
}

test('dump sends typed options and serves notify callbacks in order', async () => {
  const fake = scriptedCriu((peer) => playDump(peer, ['pre-dump', 'network-lock', 'post-dump'], () => ({ success: true })));
  const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
  const seen: [NotifyScript, number | undefined][] = [];
  const result = await client.dump(
    { pid: 1234, imagesDir: dir, tcpEstablished: true, fileLocks: true, leaveRunning: true, externalMounts: [{ key: '/data', value: 'data' }] },
    { onNotify: (script, pid) => void seen.push([script, pid]) },
  );
  expect(seen).toEqual([['pre-dump', 42], ['network-lock', 42], ['post-dump', 42]]);
  expect(result.logPath).toBe(join(dir, 'dump.log'));
  const opts = fake.requests[0]?.opts as Record<string, unknown>;
  expect(opts).toMatchObject({
    pid: 1234,
    tcp_established: true,
    file_locks: true,
    leave_running: true,
    notify_scripts: true,
    log_file: 'dump.log',
    log_level: 4,
    external: ['mnt[/data]:data'],
  });
  expect(typeof opts.images_dir_fd).toBe('number');
  expect(fake.scriptErrors).toEqual([]);
});

test('a notify handler that returns false makes CRIU fail the dump', async () => {
  const fake = scriptedCriu((peer) =>
    playDump(peer, ['pre-dump', 'post-dump'], (answers) => ({ success: answers.every(Boolean), cr_errmsg: 'notify refused' })),
  );
  const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
  await expect(client.dump({ pid: 1, imagesDir: dir }, { onNotify: (s) => s !== 'pre-dump' })).rejects.toMatchObject({
    code: 'ERR_CRIU_DUMP_FAILED',
    message: expect.stringContaining('notify refused'),
  });
  expect(fake.requests.filter((r) => r.type === 'NOTIFY').map((r) => r.notify_success)).toEqual([false]);
});

describe('dumpWithHold', () => {
  const holdScript = (peer: FakeCriuPeer) =>
    playDump(peer, ['pre-dump', 'post-dump'], (answers) =>
      answers[1] ? { success: true } : { success: false, cr_errmsg: 'post-dump script failed' },
    );

  test('waits at post-dump; commit answers success and returns the result', async () => {
    const fake = scriptedCriu(holdScript);
    const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
    const hold = await client.dumpWithHold({ pid: 7, imagesDir: dir });
    // CRIU is waiting for our answer to post-dump: two NOTIFY answers would mean we did not hold.
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.requests.filter((r) => r.type === 'NOTIFY')).toHaveLength(1);
    await expect(hold.commit()).resolves.toMatchObject({ logPath: join(dir, 'dump.log') });
    expect(fake.requests.filter((r) => r.type === 'NOTIFY').map((r) => r.notify_success)).toEqual([true, true]);
    await expect(hold.resume()).rejects.toThrow(/already answered/);
  });

  test('resume answers failure, and the failed dump that follows is the expected outcome', async () => {
    const fake = scriptedCriu(holdScript);
    const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
    const hold = await client.dumpWithHold({ pid: 7, imagesDir: dir });
    await expect(hold.resume()).resolves.toBeUndefined();
    expect(fake.requests.filter((r) => r.type === 'NOTIFY').map((r) => r.notify_success)).toEqual([true, false]);
  });

  test('a dump that fails before post-dump rejects the hold itself', async () => {
    const fake = scriptedCriu(async (peer) => {
      await peer.recv();
      await peer.send({ type: 'DUMP', success: false, cr_errno: 3, cr_errmsg: 'No such process' });
    });
    const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
    await expect(client.dumpWithHold({ pid: 7, imagesDir: dir })).rejects.toMatchObject({
      code: 'ERR_CRIU_DUMP_FAILED',
      details: expect.objectContaining({ crErrno: 3, crErrmsg: 'No such process' }),
    });
  });
});

test('version and features decode from the wire', async () => {
  const fake = scriptedCriu(async (peer) => {
    const request = await peer.recv();
    if (request?.type === 'VERSION') {
      await peer.send({ type: 'VERSION', success: true, version: { major_number: 4, minor_number: 2, sublevel: 1, gitid: 'abc' } });
    } else {
      expect(request?.features).toEqual({ mem_track: true, lazy_pages: true, pidfd_store: true });
      await peer.send({ type: 'FEATURE_CHECK', success: true, features: { mem_track: false, lazy_pages: true } });
    }
  });
  const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
  await expect(client.version()).resolves.toEqual({ major: 4, minor: 2, sublevel: 1, gitid: 'abc', text: '4.2.1' });
  await expect(client.features()).resolves.toEqual({ memTrack: false, lazyPages: true, pidfdStore: false });
});

test('restore returns the pid and rejects a response without one', async () => {
  const fake = scriptedCriu(async (peer, index) => {
    await peer.recv();
    await peer.send(index === 0 ? { type: 'RESTORE', success: true, restore: { pid: 4242 } } : { type: 'RESTORE', success: true });
  });
  const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
  await expect(client.restore({ imagesDir: dir, tcpEstablished: true })).resolves.toEqual({ pid: 4242, logPath: join(dir, 'restore.log') });
  await expect(client.restore({ imagesDir: dir })).rejects.toMatchObject({ code: 'ERR_CRIU_PROTOCOL' });
});

test('a missing images directory is ERR_IMAGE_NOT_FOUND before CRIU starts', async () => {
  const fake = scriptedCriu(async () => undefined);
  const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
  await expect(client.restore({ imagesDir: join(dir, 'nope') })).rejects.toMatchObject({ code: 'ERR_IMAGE_NOT_FOUND' });
  expect(fake.requests).toEqual([]);
});

test('a harmless first error from CRIU gives way to the last real error of the log', async () => {
  const { writeFileSync } = await import('node:fs');
  writeFileSync(
    join(dir, 'restore.log'),
    "(00.000001) Error (criu/util.c:1): rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted\n(00.100000) Error (criu/image.c:563): Magic doesn't match for inventory.img\n",
  );
  const fake = scriptedCriu(async (peer) => {
    await peer.recv();
    await peer.send({ type: 'RESTORE', success: false, cr_errmsg: "rlimit: Can't setup RLIMIT_NOFILE for self: Operation not permitted" });
  });
  const client = new CriuClient({ criuPath: 'criu', startSession: fake.startSession });
  const error = await client.restore({ imagesDir: dir }).catch((e: unknown) => e as Error);
  expect(error.message).toMatch(/^CRIU restore failed: Error \(criu\/image.c:563\): Magic doesn't match/);
  expect(error.message).not.toMatch(/failed: .*RLIMIT_NOFILE/);
});
