/**
 * Ctrl-C / SIGTERM during a long runtime call: abort it through its signal, so the adapter cleans up (a killed
 * checkpoint thaws the container, a killed restore leaves nothing behind) and the command ends with ERR_ABORTED.
 */
export async function withInterrupt<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await body(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
