import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findKnownKeys, knownHostsName } from './known-hosts';

let dir: string;
beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'ferry-kh-'))));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

test('matches plain, bracketed-port, pattern and hashed entries, honouring negation and @revoked', () => {
  const salt = Buffer.from('0123456789abcdef0123');
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('10.0.0.9').digest('base64')}`;
  const file = join(dir, 'known_hosts');
  writeFileSync(
    file,
    [
      '# comment',
      '10.0.0.1,host1 ssh-ed25519 AAAA1',
      '[10.0.0.1]:2222 ssh-ed25519 AAAA2',
      '*.lab,!bad.lab ssh-rsa AAAA3',
      `${hashed} ssh-ed25519 AAAA4`,
      '@revoked 10.0.0.1 ssh-ed25519 AAAA5',
      '@cert-authority *.lab ssh-ed25519 AAAA6',
    ].join('\n'),
  );
  expect(findKnownKeys([file], '10.0.0.1', 22).map((k) => [k.keyBase64, k.revoked])).toEqual([
    ['AAAA1', false],
    ['AAAA5', true],
  ]);
  expect(findKnownKeys([file], '10.0.0.1', 2222).map((k) => k.keyBase64)).toEqual(['AAAA2']);
  expect(findKnownKeys([file], 'a.lab', 22).map((k) => k.keyBase64)).toEqual(['AAAA3']);
  expect(findKnownKeys([file], 'bad.lab', 22)).toEqual([]);
  expect(findKnownKeys([file], '10.0.0.9', 22).map((k) => k.keyBase64)).toEqual(['AAAA4']);
  expect(findKnownKeys([join(dir, 'missing'), file], 'host1', 22)[0]?.line).toBe(2);
  expect(knownHostsName('h', 22)).toBe('h');
  expect(knownHostsName('h', 2222)).toBe('[h]:2222');
});
