/**
 * The built CLI as a user runs it (needs `tsc -b`, which scripts/test.sh does first).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

const BIN = join(__dirname, '..', 'bin');

function ferry(...args: string[]) {
  const r = spawnSync(process.execPath, [join(BIN, 'ferry.js'), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('bad input', () => {
  it.each([[['frobnicate']], [['doctor', '--no-such-flag']], [[]]])('%j: one line, a hint, exit 2, no stack', (args) => {
    const r = ferry(...args);
    expect(r.status).toBe(2);
    const [first, second] = r.stderr.split('\n');
    expect(first).toMatch(/^error ERR_PRECHECK_BAD_INPUT: /);
    expect(second).toMatch(/^  hint: .*(Commands: .*doctor|ferry doctor --help)/);
    expect(r.stderr).not.toMatch(/\n\s+at .*\(.*:\d+:\d+\)/);
  });

  it('the short form is migrate', () => {
    const r = spawnSync(process.execPath, [join(BIN, 'migrate.js'), '--help'], { encoding: 'utf8' });
    expect(r.stdout).toMatch(/ferry migrate <container>/);
    expect(r.stdout).toMatch(/--to/);
  });
});

describe('ferry doctor', () => {
  it('--json is valid JSON with the facts of this host', () => {
    const r = ferry('doctor', '--json');
    const facts = JSON.parse(r.stdout);
    expect(facts.criu.version.major * 100 + facts.criu.version.minor).toBeGreaterThanOrEqual(402);
    expect(facts.criu.check.ok).toBe(true);
    expect(r.status).toBe(0);
    const strategies = Object.fromEntries(facts.strategies.map((s: { name: string }) => [s.name, s]));
    expect(strategies['stop-and-copy'].available).toBe(true);
    // Memory tracking must agree with what CRIU itself says about soft-dirty on this kernel.
    expect(strategies['pre-copy'].available).toBe(facts.criu.features.memTrack);
    if (!facts.criu.features.memTrack) expect(strategies['pre-copy'].reason).toMatch(/soft-dirty/);
    expect(facts.runtimes.find((x: { name: string }) => x.name === 'runc').usable).toBe(true);
  });

  it('prints a readable report with the same verdict', () => {
    const r = ferry('doctor');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/criu check\s+ok/);
    expect(r.stdout).toMatch(/verdict: this host can checkpoint and restore/);
  });

  it('exits non-zero when CRIU is missing, saying so', () => {
    const r = ferry('doctor', '--criu', '/nonexistent/criu');
    expect(r.status).toBe(1);
    expect(r.stdout).toMatch(/path\s+not found/);
    expect(r.stdout).toMatch(/CANNOT checkpoint/);
  });
});
