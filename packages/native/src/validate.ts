// Argument checks shared by the facade: a wrong argument is a TypeError (wrong kind) or RangeError (right kind, bad
// value) naming the function and the argument, thrown before anything reaches C++.

/**
 * Bytes in or out of the native calls. Buffer is spelled out because with @types/node < 20.17 and TypeScript >= 5.7
 * a Buffer is not assignable to Uint8Array (generic typed arrays); with newer types the union is just Uint8Array.
 */
export type ByteArray = Uint8Array | Buffer;

/** Linux's PID_MAX_LIMIT. */
const PID_MAX = 4_194_304;
const UINT64_LIMIT = 1n << 64n;

export function checkPid(fn: string, pid: unknown): number {
  if (typeof pid !== 'number' || !Number.isInteger(pid)) {
    throw new TypeError(`${fn}: pid must be an integer, got ${describe(pid)}`);
  }
  if (pid <= 0 || pid > PID_MAX) throw new RangeError(`${fn}: pid must be in 1..${PID_MAX}, got ${pid}`);
  return pid;
}

export function checkAddress(fn: string, what: string, value: unknown): bigint {
  if (typeof value !== 'bigint') throw new TypeError(`${fn}: ${what} must be a bigint, got ${describe(value)}`);
  if (value < 0n || value >= UINT64_LIMIT) throw new RangeError(`${fn}: ${what} must fit in 64 unsigned bits`);
  return value;
}

export function checkLength(fn: string, what: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw new TypeError(`${fn}: ${what} must be a safe integer, got ${describe(value)}`);
  }
  if (value < 0) throw new RangeError(`${fn}: ${what} must not be negative, got ${value}`);
  return value;
}

export function checkConcurrency(fn: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw new TypeError(`${fn}: concurrency must be an integer, got ${describe(value)}`);
  }
  if (value < 1 || value > 256) throw new RangeError(`${fn}: concurrency must be in 1..256, got ${value}`);
  return value;
}

export function checkUint8Array(fn: string, what: string, value: unknown): ByteArray {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${fn}: ${what} must be a Uint8Array or Buffer`);
  return value;
}

/** Rejects anything but a plain options object with known keys; an unknown key gets a "did you mean". */
export function checkOptions<T extends object>(fn: string, options: unknown, allowed: readonly (keyof T & string)[]): T {
  if (options === undefined) return {} as T;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${fn}: options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key as keyof T & string)) {
      const guess = closest(key, allowed);
      throw new TypeError(
        `${fn}: unknown option "${key}"${guess ? `; did you mean "${guess}"?` : ''} (known: ${allowed.join(', ')})`,
      );
    }
  }
  return options as T;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

export function describe(value: unknown): string {
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : `a ${value.constructor?.name ?? 'object'}`;
}
