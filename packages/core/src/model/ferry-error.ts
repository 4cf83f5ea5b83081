import type { ErrorCode } from './error-codes';

export interface FerryErrorOptions {
  /** One sentence that names an action the user can take. */
  hint?: string;
  /** The foreign error this one translates (CRIU response, errno error, ssh2 error...). */
  cause?: unknown;
  /** Structured facts for `--json` output and tests (log path, errno, pid...). Never secrets. */
  details?: Record<string, unknown>;
}

/**
 * The one error class ferry throws on purpose. Anything else reaching the CLI is a bug and is rendered as one.
 */
export class FerryError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'FerryError';
    this.code = code;
    this.hint = options.hint;
    this.details = options.details ?? {};
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

/** True when `value` is a FerryError (of `code`, when given). */
export function isFerryError(value: unknown, code?: ErrorCode): value is FerryError {
  return value instanceof FerryError && (code === undefined || value.code === code);
}
