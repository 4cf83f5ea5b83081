/**
 * The JSON Schema of `--json` lines (docs/json-events.schema.json), compiled once with Ajv, for tests that check real
 * CLI output against it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv from 'ajv';

export const JSON_EVENTS_SCHEMA = join(__dirname, '..', '..', '..', '..', 'docs', 'json-events.schema.json');

let compiled: ((line: unknown) => boolean) & { errors?: unknown } | undefined;

/** Problems of each line that does not match the schema (empty when all match), with the line quoted. */
export function jsonEventProblems(lines: readonly unknown[]): string[] {
  if (!compiled) compiled = new Ajv({ allErrors: true, strict: true }).compile(JSON.parse(readFileSync(JSON_EVENTS_SCHEMA, 'utf8')) as object);
  const problems: string[] = [];
  for (const line of lines) {
    if (!compiled(line)) problems.push(`${JSON.stringify(line)}: ${JSON.stringify(compiled.errors).slice(0, 600)}`);
  }
  return problems;
}
