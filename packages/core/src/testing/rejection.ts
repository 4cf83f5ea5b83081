import { isFerryError, type FerryError } from '../model/ferry-error';

/** The FerryError `promise` rejects with; throws when it resolves, or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<FerryError> {
  const outcome = await promise.then(
    () => ({ resolved: true as const }),
    (err: unknown) => ({ resolved: false as const, err }),
  );
  if (outcome.resolved) throw new Error('expected a FerryError, but the call succeeded');
  if (!isFerryError(outcome.err)) throw outcome.err;
  return outcome.err;
}
