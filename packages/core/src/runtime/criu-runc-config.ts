/**
 * The CRIU configuration file runc hands to CRIU on every checkpoint and restore: the file named by the container's
 * `org.criu.config` annotation, else /etc/criu/runc.conf (runc 1.1 libcontainer/container_linux.go,
 * handleCriuConfigurationFile). CRIU applies it AFTER the options of the RPC request (criu/cr-service.c: "overwrite
 * all RPC settings"), so a `tcp-established` line there turns on --tcp-established for restores that runc starts on
 * someone else's behalf, such as Docker's `docker start --checkpoint`, which has no way to ask for it. That is how
 * ferry moves Docker containers with their established TCP connections (docs/docker.md has the evidence).
 *
 * Format (criu/config.c): one option per line, without the leading "--", a value after whitespace, `#` comments.
 */
import { readFileSync } from 'node:fs';

export const RUNC_CRIU_CONFIG = '/etc/criu/runc.conf';

/** The option names a CRIU configuration file sets (`tcp-established`, `log-file`, ...). */
export function criuConfigOptions(text: string): Set<string> {
  const names = new Set<string>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (line === '') continue;
    names.add(line.split(/\s+/)[0]!.replace(/^--/, ''));
  }
  return names;
}

/** Whether runc's CRIU configuration on this host turns on --tcp-established; unreadable or absent reads as no. */
export function runcCriuConfigHasTcpEstablished(path: string = RUNC_CRIU_CONFIG): boolean {
  try {
    return criuConfigOptions(readFileSync(path, 'utf8')).has('tcp-established');
  } catch {
    return false;
  }
}
