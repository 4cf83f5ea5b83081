/**
 * Text that came from elsewhere (a peer's hostname, a container name from a record) made safe to put into one log
 * line or message: control characters (newlines, escape sequences) are shown escaped, and it is cut to `max`
 * characters, so a hostile peer cannot forge log lines or repaint a terminal. `newlines` keeps line breaks (messages
 * that quote a CRIU log excerpt span lines).
 */
export function printable(text: unknown, max = 256, options: { newlines?: boolean } = {}): string {
  const control = options.newlines ? /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g : /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;
  const s = String(text).replace(control, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
  return s.length > max ? `${s.slice(0, max)}...` : s;
}
