import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { criuConfigOptions, runcCriuConfigHasTcpEstablished } from './criu-runc-config';

it('reads option names as CRIU does: one per line, values and comments ignored, "--" optional', () => {
  const text = '# for Docker moves\ntcp-established\n  --file-locks  \nlog-file /var/log/criu.log # kept\n\n#ext-unix-sk\n';
  expect([...criuConfigOptions(text)].sort()).toEqual(['file-locks', 'log-file', 'tcp-established']);
});

it('a missing or unreadable file turns nothing on', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-criu-conf-'));
  try {
    expect(runcCriuConfigHasTcpEstablished(join(dir, 'none.conf'))).toBe(false);
    writeFileSync(join(dir, 'runc.conf'), 'tcp-established\n');
    expect(runcCriuConfigHasTcpEstablished(join(dir, 'runc.conf'))).toBe(true);
    writeFileSync(join(dir, 'other.conf'), '# tcp-established\nfile-locks\n');
    expect(runcCriuConfigHasTcpEstablished(join(dir, 'other.conf'))).toBe(false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
