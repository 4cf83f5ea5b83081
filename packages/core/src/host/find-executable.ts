import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/** First executable file named `name` in the PATH-style list `searchPath`; absolute names are checked as they are. */
export function findExecutable(name: string, searchPath: string): string | undefined {
  const candidates = isAbsolute(name) ? [name] : searchPath.split(delimiter).filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      /* not here */
    }
  }
  return undefined;
}
