import { FerryError, printable } from '@ferry/core';

/** One block for a human (code, message, hint) or one JSON line for scripts. Unknown errors are labelled as bugs. */
export function renderError(err: unknown, options: { json: boolean; color?: boolean }): string {
  if (err instanceof FerryError) {
    if (options.json) return `${JSON.stringify({ event: 'error', error: err.toJSON() })}\n`;
    const red = options.color ? (s: string) => `\u001b[31m${s}\u001b[0m` : (s: string) => s;
    // Messages quote what peers and files said (hostnames, names): escaped, so each stays one line on a terminal.
    const hint = err.hint ? `\n  hint: ${printable(err.hint, 2000)}` : '';
    return `${red(`error ${err.code}`)}: ${printable(err.message, 8000, { newlines: true })}${hint}\n`;
  }
  const message = err instanceof Error ? (err.stack ?? err.message) : String(err);
  if (options.json) return `${JSON.stringify({ event: 'error', error: { code: 'BUG', message: String(err) } })}\n`;
  return `ferry hit an unexpected error; this is a bug in ferry, please report it with the output below.\n${message}\n`;
}
