import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES } from '@ferry/core';
import { EXIT, exitCodeFor } from './exit-codes';

const doc = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'exit-codes.md'), 'utf8');

test('docs/exit-codes.md lists every error code in the row of its exit code', () => {
  const rows = new Map(doc.split('\n').filter((l) => /^\| \d+ \|/.test(l)).map((l) => [Number(l.split('|')[1]), l]));
  const wrong = ERROR_CODES.filter((code) => !rows.get(exitCodeFor(code))?.includes(`\`${code}\``));
  expect(wrong).toEqual([]);
  for (const exit of Object.values(EXIT)) expect(rows.has(exit)).toBe(true);
});
