/** /proc/PID/mountinfo escapes space, tab, newline and backslash in paths as octal (`\040`); this undoes it. */
export function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}
