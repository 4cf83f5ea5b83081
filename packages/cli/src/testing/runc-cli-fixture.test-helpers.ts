/**
 * The set-up the CLI's runc integration tests share (checkpoint, archive, snapshot): a temporary directory per test,
 * real runc containers running the workload fixture, and clean-ups that run after each test, newest first, also when
 * it fails. Call it once at the top of a test file: it registers its own beforeEach and afterEach.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RuncAdapter } from '@ferry/core';
import { runCleanups, startRuncContainer, type RuncContainer } from '@ferry/core/testing';

export interface RuncCliFixture {
  /** The CLI's defaults: runc's root, ferry's state dir. */
  readonly adapter: RuncAdapter;
  /** This test's temporary directory, removed after it. */
  readonly dir: string;
  /** Steps run after this test, newest first: a restored copy (which joined the original's netns) goes before the original. */
  readonly cleanups: (() => Promise<void> | void)[];
  /** A fresh workload container (16 MiB), stopped after the test through the harness (runc delete -f, netns, bundle). */
  container(): Promise<RuncContainer>;
  /** A container `ferry restore` made: removed through the adapter after the test, so its netns and bundle copy go too. */
  restoredLater(name: string): void;
}

export function runcCliFixture(tmpPrefix: string): RuncCliFixture {
  const adapter = new RuncAdapter();
  const cleanups: (() => Promise<void> | void)[] = [];
  let dir: string | undefined;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), tmpPrefix));
  });

  afterEach(async () => {
    await runCleanups(cleanups);
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  return {
    adapter,
    get dir() {
      if (dir === undefined) throw new Error('runcCliFixture: dir is there inside a test only');
      return dir;
    },
    cleanups,
    async container() {
      const c = await startRuncContainer({ memMib: 16 });
      cleanups.push(() => c.stop());
      return c;
    },
    restoredLater(name) {
      cleanups.push(() => adapter.remove(name));
    },
  };
}
