/**
 * Two in-memory Duplex streams wired to each other, for protocol tests: what one writes, the other reads. Destroying
 * either end ends both, as a broken connection would.
 */
import { Duplex } from 'node:stream';

export function duplexPair(): [Duplex, Duplex] {
  const make = (peer: () => Duplex): Duplex =>
    new Duplex({
      read() {},
      write(chunk: Buffer, _encoding, callback) {
        const other = peer();
        if (!other.destroyed) other.push(Buffer.from(chunk));
        callback();
      },
      final(callback) {
        peer().push(null);
        callback();
      },
      destroy(error, callback) {
        const other = peer();
        if (!other.destroyed) other.destroy();
        callback(error);
      },
    });
  // eslint-disable-next-line prefer-const
  let b: Duplex;
  const a = make(() => b);
  b = make(() => a);
  return [a, b];
}
