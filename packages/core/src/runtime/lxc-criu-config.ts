/**
 * The CRIU options ferry adds to what liblxc passes. `lxc-checkpoint` has no flags for a page server, lazy pages or
 * TCP connections, but the CRIU it starts reads a configuration file named by the CRIU_CONFIG_FILE environment
 * variable (CRIU's own mechanism; liblxc passes its environment on to CRIU). Options on liblxc's command line win
 * over the file, so ferry only adds options liblxc does not set. Verified with LXC 5.0.2 and CRIU 4.2.1: a dump
 * with `page-server`/`address`/`port` in the file sends its pages to a `criu page-server` and writes none locally.
 */
import { writeFileSync } from 'node:fs';

export interface LxcCriuExtras {
  tcpEstablished?: boolean;
  fileLocks?: boolean;
  extUnixSk?: boolean;
  /** CRIU's work dir (logs, stats); liblxc passes none, so CRIU would use the images dir. */
  workDir?: string;
  /** Dump: stream pages to this page server instead of the images dir. */
  pageServer?: { address: string; port: number };
  /** Dump: leave the pages to a page server on address:port for a lazy restore. Restore: take them from `criu lazy-pages`. */
  lazyPages?: boolean | { address: string; port: number };
}

/** The file's text: one long option per line, as CRIU's config parser reads it. */
export function lxcCriuConfigText(extras: LxcCriuExtras): string {
  const lines: string[] = [];
  if (extras.tcpEstablished) lines.push('tcp-established');
  if (extras.fileLocks) lines.push('file-locks');
  if (extras.extUnixSk) lines.push('ext-unix-sk');
  if (extras.workDir !== undefined) {
    assertPlain(extras.workDir);
    lines.push(`work-dir ${extras.workDir}`);
  }
  const server = typeof extras.lazyPages === 'object' ? extras.lazyPages : extras.pageServer;
  if (extras.lazyPages) lines.push('lazy-pages');
  if (server) {
    if (!/^[0-9a-fA-F.:]+$/.test(server.address) || !Number.isInteger(server.port) || server.port <= 0 || server.port > 65535) {
      throw new Error(`bad page server address ${server.address}:${server.port}`);
    }
    // `page-server` makes the dump connect to a page server; without it, a lazy dump listens on address:port and
    // serves its pages itself (measured: with both, CRIU 4.2.1 tries to connect and fails).
    if (!extras.lazyPages) lines.push('page-server');
    lines.push(`address ${server.address}`, `port ${server.port}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/** Writes the file (0600) when there is anything to say; returns its path or undefined. */
export function writeLxcCriuConfig(path: string, extras: LxcCriuExtras): string | undefined {
  const text = lxcCriuConfigText(extras);
  if (!text) return undefined;
  writeFileSync(path, text, { mode: 0o600 });
  return path;
}

/** CRIU's config parser splits on whitespace and has no quoting: paths with spaces or quotes cannot be expressed. */
function assertPlain(path: string): void {
  if (!/^\/[A-Za-z0-9._/+@,=-]*$/.test(path)) throw new Error(`path ${JSON.stringify(path)} cannot be written into a CRIU config file`);
}
