import { NfQueue } from './nfqueue';

// Argument checks happen before any system call (the real queue is exercised by core's packet-hold.int.test.ts).
describe('NfQueue.open arguments', () => {
  const onPacket = () => undefined;
  test.each([
    [{ queueNum: -1, onPacket }, RangeError, /queueNum must be in 0..65535/],
    [{ queueNum: 65536, onPacket }, RangeError, /queueNum must be in 0..65535/],
    [{ queueNum: 1.5, onPacket }, RangeError, /queueNum/],
    [{ queueNum: 1, onPacket: 'no' }, TypeError, /onPacket must be a function/],
    [{ queueNum: 1, onPacket, netnsPath: 'relative/path' }, TypeError, /netnsPath must be an absolute path/],
    [{ queueNum: 1, onPacket, queueNumber: 2 }, TypeError, /unknown option "queueNumber"; did you mean "queueNum"/],
  ])('%o is refused', async (options, kind, message) => {
    await expect(NfQueue.open(options as never)).rejects.toThrow(kind);
    await expect(NfQueue.open(options as never)).rejects.toThrow(message);
  });
});
