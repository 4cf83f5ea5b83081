/** Waiting on stream events without leaking listeners, each wait racing the transfer's own failure. */

/** Node's and streamx's emitters alike (their listener signatures differ per event, hence `any`). */
export interface Emitter {
  on(event: string, fn: (...args: any[]) => void): unknown;
  off(event: string, fn: (...args: any[]) => void): unknown;
}

/**
 * Resolves on `event`; rejects on 'error', or on 'close' before `event` (`closedError` says what that means), or
 * when `stop` rejects (the transfer failed or was aborted elsewhere).
 */
export function waitForEvent(emitter: Emitter, event: string, stop: Promise<never>, closedError: () => Error): Promise<void> {
  let cleanup = (): void => undefined;
  const waited = new Promise<void>((resolve, reject) => {
    const onEvent = () => {
      cleanup();
      resolve();
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    const onClose = () => {
      cleanup();
      reject(closedError());
    };
    emitter.on(event, onEvent);
    emitter.on('error', onError);
    emitter.on('close', onClose);
    cleanup = () => {
      emitter.off(event, onEvent);
      emitter.off('error', onError);
      emitter.off('close', onClose);
    };
  });
  return Promise.race([waited, stop]).finally(() => cleanup());
}

/** A promise that rejects with the first error passed to `fail`, for racing; never reported as unhandled. */
export function stopSignal(): { stop: Promise<never>; fail: (err: unknown) => boolean; failure: () => unknown } {
  let reject!: (err: unknown) => void;
  let failed = false;
  let failure: unknown;
  const stop = new Promise<never>((_, r) => (reject = r));
  stop.catch(() => undefined);
  return {
    stop,
    fail: (err) => {
      if (failed) return false;
      failed = true;
      failure = err;
      reject(err);
      return true;
    },
    failure: () => failure,
  };
}
