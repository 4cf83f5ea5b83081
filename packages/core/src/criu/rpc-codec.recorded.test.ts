/**
 * The RPC codec against conversations recorded from a real `criu swrk` (CRIU 4.2.1, kernel 6.18; see recorded/*.json,
 * written by tools/record-swrk.ts). The responses are CRIU's own bytes (protobuf-c); the requests are what ferry sent and
 * CRIU accepted. Re-record with:
 *
 *   npx tsc -b && node packages/core/dist/criu/record-swrk.js packages/core/src/criu/recorded
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CriuClient, type NotifyScript, type RpcSession, type StartSession } from './criu-client';
import type { RecordedMessage, Recording } from './rpc-recording';
import { decodeRequest, decodeResponse, encodeRequest, encodeResponse, type WireRequest, type WireResponse } from './rpc-codec';

const RECORDED_DIR = join(__dirname, 'recorded');
const SESSIONS = ['version', 'feature-check', 'check', 'dump', 'restore', 'restore-failed', 'cpuinfo-dump'] as const;
type SessionName = (typeof SESSIONS)[number];

const recordings = new Map<string, Recording>(
  readdirSync(RECORDED_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const r = JSON.parse(readFileSync(join(RECORDED_DIR, f), 'utf8')) as Recording;
      return [r.session, r];
    }),
);

function recording(name: SessionName): Recording {
  const r = recordings.get(name);
  if (!r) throw new Error(`no recording ${name}.json in ${RECORDED_DIR}`);
  return r;
}

const bytesOf = (m: RecordedMessage) => Buffer.from(m.hex, 'hex');
const requestsOf = (name: SessionName) => recording(name).messages.filter((m) => m.direction === 'request');
const responsesOf = (name: SessionName) => recording(name).messages.filter((m) => m.direction === 'response');
const decodedResponses = (name: SessionName): WireResponse[] => responsesOf(name).map((m) => decodeResponse(bytesOf(m)));
const decodedRequests = (name: SessionName): WireRequest[] => requestsOf(name).map((m) => decodeRequest(bytesOf(m)));
const notifyScripts = (name: SessionName) => decodedResponses(name).filter((r) => r.type === 'NOTIFY').map((r) => r.notify?.script);

const allMessages = [...recordings.values()].flatMap((r) =>
  r.messages.map((m, i) => ({ label: `${r.session}#${i} ${m.direction} ${m.type}`, message: m })),
);

test('every session was recorded, from CRIU 4.2.x, and the files stay commit-sized', () => {
  expect([...recordings.keys()].sort()).toEqual([...SESSIONS].sort());
  for (const r of recordings.values()) {
    expect(r.format).toBe('ferry-criu-rpc-recording/1');
    expect(r.criuVersion).toMatch(/^4\.2\.\d+$/);
    expect(r.messages.length).toBeGreaterThanOrEqual(2);
    // One conversation: it opens with a request and ends with the answer of the same type.
    expect(r.messages[0]!.direction).toBe('request');
    expect(r.messages.at(-1)!.direction).toBe('response');
    expect(r.messages.at(-1)!.type).toBe(r.messages[0]!.type);
    expect(JSON.stringify(r).length).toBeLessThan(8 * 1024);
  }
});

describe('(a) CRIU responses decode', () => {
  it.each(allMessages.filter((m) => m.message.direction === 'response'))('%s', ({ message }) => {
    // The label in the file comes from the raw bytes (field 1), not from ferry's schema.
    expect(decodeResponse(bytesOf(message)).type).toBe(message.type);
  });

  test('VERSION: 4.2.x numbers, matching the version the recording is labelled with', () => {
    const [resp] = decodedResponses('version');
    expect(resp).toMatchObject({ type: 'VERSION', success: true });
    const [major, minor, sublevel] = recording('version').criuVersion.split('.').map(Number);
    expect(resp!.version).toMatchObject({ major_number: major, minor_number: minor, sublevel });
    expect(resp!.version!.major_number * 100 + resp!.version!.minor_number).toBe(402);
  });

  test('FEATURE_CHECK: an answer for each asked feature, as booleans', () => {
    const [req] = decodedRequests('feature-check');
    expect(req!.features).toEqual({ mem_track: true, lazy_pages: true, pidfd_store: true });
    const [resp] = decodedResponses('feature-check');
    expect(resp).toMatchObject({ type: 'FEATURE_CHECK', success: true });
    for (const key of ['mem_track', 'lazy_pages', 'pidfd_store'] as const) expect(typeof resp!.features![key]).toBe('boolean');
    // The recording host's kernel has no soft-dirty (LAB.md): CRIU says no to memory tracking, yes to the rest.
    expect(resp!.features).toEqual({ mem_track: false, lazy_pages: true, pidfd_store: true });
  });

  test('CHECK and CPUINFO_DUMP succeed', () => {
    expect(decodedResponses('check')).toEqual([{ type: 'CHECK', success: true }]);
    expect(decodedResponses('cpuinfo-dump')).toEqual([{ type: 'CPUINFO_DUMP', success: true }]);
  });

  test('DUMP: NOTIFY scripts in CRIU order, each answered with success, then the final DUMP answer', () => {
    expect(notifyScripts('dump')).toEqual(['pre-dump', 'query-ext-files', 'post-dump']);
    const answers = decodedRequests('dump').slice(1);
    expect(answers).toEqual(answers.map(() => ({ type: 'NOTIFY', notify_success: true })));
    // Requests and responses alternate: CRIU waits for each answer before it goes on.
    expect(recording('dump').messages.map((m) => m.direction)).toEqual(
      recording('dump').messages.map((_, i) => (i % 2 === 0 ? 'request' : 'response')),
    );
    const final = decodedResponses('dump').at(-1)!;
    expect(final).toMatchObject({ type: 'DUMP', success: true, dump: { restored: false } });
  });

  test('RESTORE: NOTIFY scripts in CRIU order, the pid in the notifications and in the answer', () => {
    expect(notifyScripts('restore')).toEqual([
      'pre-restore',
      'setup-namespaces',
      'post-setup-namespaces',
      'post-restore',
      'pre-resume',
      'post-resume',
    ]);
    const responses = decodedResponses('restore');
    const final = responses.at(-1)!;
    expect(final).toMatchObject({ type: 'RESTORE', success: true });
    expect(final.restore!.pid).toBeGreaterThan(0);
    const pids = responses.filter((r) => r.notify?.pid !== undefined).map((r) => r.notify!.pid);
    expect(pids.length).toBeGreaterThan(0);
    expect(new Set(pids)).toEqual(new Set([final.restore!.pid]));
  });

  test('failed RESTORE: success false, pid -1 (a negative int32, ten bytes on the wire) and cr_errmsg', () => {
    const [resp] = decodedResponses('restore-failed');
    expect(resp).toMatchObject({ type: 'RESTORE', success: false, restore: { pid: -1 } });
    // CRIU sends cr_errno only when it is non-zero; cr_errmsg is the FIRST error CRIU logged (set_resp_err() in
    // cr-service.c). On the recording host that is always the harmless RLIMIT_NOFILE line (root without
    // CAP_SYS_RESOURCE), not the reason of the failure: the reason is in the log.
    expect(resp!.cr_errno).toBeUndefined();
    expect(resp!.cr_errmsg).toMatch(/^Error \(criu\/[\w./-]+:\d+\): /);
    expect(resp!.cr_errmsg).toMatch(/RLIMIT_NOFILE/);
    // The same first error rides along on successful answers too, so a set cr_errmsg never means failure by itself.
    expect(decodedResponses('dump').at(-1)!.cr_errmsg).toBe(resp!.cr_errmsg);
  });
});

describe('(b) byte-identical re-encoding', () => {
  // protobufjs and protobuf-c both write fields in field-number order with the same varint/length rules, so
  // identical bytes are expected both ways; a wrong field number or type in rpc-schema.ts shows up here.
  it.each(allMessages.filter((m) => m.message.direction === 'request'))('request %s: encodeRequest(decodeRequest(b)) == b', ({ message }) => {
    const bytes = bytesOf(message);
    const decoded = decodeRequest(bytes);
    expect(decoded.type).toBe(message.type);
    expect(encodeRequest(decoded).toString('hex')).toBe(message.hex);
    expect(decodeRequest(encodeRequest(decoded))).toEqual(decoded);
  });

  // CRIU's own bytes: identical re-encoding means ferry's response schema has every field CRIU sent, with CRIU's
  // numbers and types (the decoder would otherwise drop or misread it).
  it.each(allMessages.filter((m) => m.message.direction === 'response'))('response %s: encodeResponse(decodeResponse(b)) == b', ({ message }) => {
    const decoded = decodeResponse(bytesOf(message));
    expect(encodeResponse(decoded).toString('hex')).toBe(message.hex);
    expect(decodeResponse(encodeResponse(decoded))).toEqual(decoded);
  });
});

/**
 * (c) Today's CriuClient replays each recorded conversation: it gets CRIU's recorded bytes as answers and must send
 * the recorded requests byte for byte. Only the directory descriptor numbers are the recording process's own; they
 * are mapped onto the recorded ones before comparing.
 */
describe('(c) CriuClient replays the recorded sessions', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-recorded-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  function replay(name: SessionName): { startSession: StartSession; sent: () => string[] } {
    const messages = recording(name).messages;
    const sent: string[] = [];
    let next = 0;
    let started = 0;
    const take = (direction: RecordedMessage['direction']) => {
      const m = messages[next++];
      if (!m || m.direction !== direction) throw new Error(`${name}: the client's ${direction} #${next - 1} is not in the recording`);
      return m;
    };
    const startSession: StartSession = async () => {
      if (started++ > 0) throw new Error(`${name}: one criu swrk session was recorded, the client started another`);
      const session: RpcSession = {
        send: async (request) => {
          const recorded = decodeRequest(bytesOf(take('request')));
          const wire = { ...request, ...(request.opts ? { opts: { ...request.opts } } : {}) };
          if (wire.opts && recorded.opts) {
            wire.opts.images_dir_fd = recorded.opts.images_dir_fd;
            if (wire.opts.work_dir_fd !== undefined) wire.opts.work_dir_fd = recorded.opts.work_dir_fd;
          }
          sent.push(encodeRequest(wire).toString('hex'));
        },
        recv: async () => decodeResponse(bytesOf(take('response'))),
        call: async (request) => {
          await session.send(request);
          return session.recv();
        },
        close: () => undefined,
      };
      return session;
    };
    return { startSession, sent: () => sent };
  }

  const expectSentAsRecorded = (name: SessionName, sent: string[]) => expect(sent).toEqual(requestsOf(name).map((m) => m.hex));

  test('version', async () => {
    const r = replay('version');
    const client = new CriuClient({ criuPath: 'criu', startSession: r.startSession });
    const version = await client.version();
    expect(version.text).toBe(recording('version').criuVersion);
    expectSentAsRecorded('version', r.sent());
  });

  test('features', async () => {
    const r = replay('feature-check');
    const client = new CriuClient({ criuPath: 'criu', startSession: r.startSession });
    await expect(client.features()).resolves.toEqual({ memTrack: false, lazyPages: true, pidfdStore: true });
    expectSentAsRecorded('feature-check', r.sent());
  });

  test('check', async () => {
    const r = replay('check');
    const client = new CriuClient({ criuPath: 'criu', startSession: r.startSession });
    await expect(client.check(dir)).resolves.toMatchObject({ ok: true });
    expectSentAsRecorded('check', r.sent());
  });

  test('dump with notify callbacks', async () => {
    const r = replay('dump');
    const client = new CriuClient({ criuPath: 'criu', startSession: r.startSession });
    const pid = decodedRequests('dump')[0]!.opts!.pid as number;
    const seen: NotifyScript[] = [];
    await client.dump({ pid, imagesDir: dir }, { onNotify: (script) => void seen.push(script) });
    expect(seen).toEqual(['pre-dump', 'query-ext-files', 'post-dump']);
    expectSentAsRecorded('dump', r.sent());
  });

  test('restore with notify callbacks', async () => {
    const r = replay('restore');
    const client = new CriuClient({ criuPath: 'criu', startSession: r.startSession });
    const seen: NotifyScript[] = [];
    const result = await client.restore({ imagesDir: dir }, { onNotify: (script) => void seen.push(script) });
    expect(result.pid).toBe(decodedResponses('restore').at(-1)!.restore!.pid);
    expect(seen).toEqual(notifyScripts('restore'));
    expectSentAsRecorded('restore', r.sent());
  });

  test('a failed restore is ERR_CRIU_RESTORE_FAILED carrying CRIU cr_errmsg', async () => {
    const r = replay('restore-failed');
    const client = new CriuClient({ criuPath: 'criu', startSession: r.startSession });
    await expect(client.restore({ imagesDir: dir })).rejects.toMatchObject({
      code: 'ERR_CRIU_RESTORE_FAILED',
      details: expect.objectContaining({ crErrmsg: decodedResponses('restore-failed')[0]!.cr_errmsg }),
    });
    expectSentAsRecorded('restore-failed', r.sent());
  });

  test('cpuinfo dump', async () => {
    const r = replay('cpuinfo-dump');
    const client = new CriuClient({ criuPath: 'criu', startSession: r.startSession });
    await client.cpuinfoDump(dir);
    expectSentAsRecorded('cpuinfo-dump', r.sent());
  });
});
