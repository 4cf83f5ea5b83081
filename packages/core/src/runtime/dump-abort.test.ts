import { dumpToolSignal } from './dump-abort';

test('a lazy dump is aborted once it is ready, not before; done() lets go of the move signal', async () => {
  const move = new AbortController();
  let ready!: () => void;
  const lazyReady = new Promise<void>((resolve) => (ready = resolve));
  const tool = dumpToolSignal(move.signal, lazyReady);
  move.abort(new Error('stop'));
  await new Promise((r) => setImmediate(r));
  expect(tool.signal!.aborted).toBe(false);
  ready();
  await lazyReady;
  await new Promise((r) => setImmediate(r));
  expect(tool.signal!.aborted).toBe(true);

  const later = new AbortController();
  const other = dumpToolSignal(later.signal, Promise.resolve());
  other.done();
  later.abort();
  await new Promise((r) => setImmediate(r));
  expect(other.signal!.aborted).toBe(false);
});

test('a dump that ends by itself gets no signal to die by', () => {
  expect(dumpToolSignal(new AbortController().signal, undefined).signal).toBeUndefined();
  expect(dumpToolSignal(undefined, Promise.resolve()).signal).toBeUndefined();
});
