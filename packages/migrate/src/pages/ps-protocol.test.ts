import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeIov,
  decodeRequest,
  encodeCloseStatus,
  encodeGetRequest,
  encodePagesHeader,
  PAGE_SIZE,
  PE_PRESENT,
  PS_IOV_ADD_F,
  PS_IOV_GET,
} from './ps-protocol';

const session = JSON.parse(readFileSync(join(__dirname, 'recorded', 'criu-lazy-session.json'), 'utf8')) as {
  requests: string[];
  responses: { header: string; dataBytes: number }[];
};
const requests = session.requests.map((hex) => Buffer.from(hex, 'hex'));
const answers = session.responses.map((r) => ({ header: Buffer.from(r.header, 'hex'), dataBytes: r.dataBytes }));

describe('the page-server protocol against a recorded CRIU 4.2.1 session', () => {
  it('decodes every request of the lazy-pages daemon: GETs of task 1, then one FORCE_CLOSE', () => {
    const decoded = requests.map(decodeRequest);
    const gets = decoded.slice(0, -1);
    expect(gets.every((r) => r.kind === 'get' && r.pid === 1 && r.nrPages >= 1)).toBe(true);
    expect(decoded.at(-1)).toEqual({ kind: 'close', force: true });
    // Faults ask for one page; the background transfer asks for more and more (CRIU's xfer_len grows by 64 KiB).
    const sizes = gets.map((r) => (r.kind === 'get' ? r.nrPages : 0));
    expect(sizes).toContain(1);
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(64);
  });

  it('reads padding it does not own as garbage, not as part of cmd', () => {
    // CRIU leaves the 4 bytes after cmd uninitialised; the recording has 0x5555 there.
    expect(requests[0]!.readUInt32LE(4)).not.toBe(0);
    expect(decodeIov(requests[0]!).cmd).toBe(PS_IOV_GET);
  });

  it("encodes answers exactly as CRIU's own page server did, padding aside", () => {
    for (let i = 0; i < answers.length; i++) {
      const request = decodeRequest(requests[i]!);
      if (request.kind !== 'get') throw new Error('expected a GET');
      const real = decodeIov(answers[i]!.header);
      expect(real).toMatchObject({ cmd: PS_IOV_ADD_F, flags: PE_PRESENT, vaddr: request.vaddr, dstId: 1n });
      expect(answers[i]!.dataBytes).toBe(real.nrPages * PAGE_SIZE);
      const ours = encodePagesHeader(request.pid, request.vaddr, real.nrPages);
      expect(ours.subarray(0, 4)).toEqual(answers[i]!.header.subarray(0, 4));
      expect(ours.subarray(8)).toEqual(answers[i]!.header.subarray(8));
    }
  });

  it('round-trips a GET and encodes the close status', () => {
    const bytes = encodeGetRequest(7, 0x7f0000001000n, 16);
    expect(decodeRequest(bytes)).toEqual({ kind: 'get', pid: 7, vaddr: 0x7f0000001000n, nrPages: 16 });
    expect(encodeCloseStatus()).toEqual(Buffer.from([0, 0, 0, 0]));
  });

  it('refuses requests no daemon sends: unaligned, empty, or for pid 0', () => {
    expect(() => decodeRequest(encodeGetRequest(1, 0x1001n, 1))).toThrow(/page-aligned/);
    expect(() => decodeRequest(encodeGetRequest(1, 0x1000n, 0))).toThrow(/nr_pages is 0/);
    expect(() => decodeRequest(encodeGetRequest(0, 0x1000n, 1))).toThrow(/not a pid/);
    expect(() => decodeIov(Buffer.alloc(16))).toThrow(/need 32/);
  });
});
