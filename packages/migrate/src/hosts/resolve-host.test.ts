import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveDestination } from './resolve-host';

let home: string;
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'ferry-home-'));
  mkdirSync(join(home, '.ssh'));
  mkdirSync(join(home, '.config', 'ferry'), { recursive: true });
});
afterEach(() => rmSync(home, { recursive: true, force: true }));

test('a name from the hosts file, the user file overriding the system one', () => {
  const system = join(home, 'system-hosts.yaml');
  writeFileSync(system, 'hosts:\n  h2: { address: 10.0.0.99 }\n  h3: { address: 10.0.0.3 }\n');
  writeFileSync(join(home, '.config/ferry/hosts.yaml'), 'hosts:\n  h2: { address: 10.0.0.2, port: 2222, user: ops, identityFile: /k, knownHostsFile: /kh }\n');
  const files = [system, join(home, '.config/ferry/hosts.yaml')];
  expect(resolveDestination('h2', { home, hostsFiles: files })).toMatchObject({
    address: '10.0.0.2',
    port: 2222,
    user: 'ops',
    identityFiles: ['/k'],
    knownHostsFiles: ['/kh'],
  });
  expect(resolveDestination('h3', { home, hostsFiles: files })).toMatchObject({ address: '10.0.0.3', port: 22, user: 'root' });
});

test('a Host entry of ~/.ssh/config', () => {
  writeFileSync(
    join(home, '.ssh/config'),
    'Host *.example\n  User nobody\nHost db1 db2\n  HostName 192.0.2.7\n  Port 2200\n  IdentityFile ~/.ssh/db_key\n  UserKnownHostsFile ~/.ssh/kh_db\nHost *\n  User fallback\n',
  );
  expect(resolveDestination('db2', { home, hostsFiles: [] })).toMatchObject({
    address: '192.0.2.7',
    port: 2200,
    user: 'fallback',
    identityFiles: [join(home, '.ssh/db_key')],
    knownHostsFiles: [join(home, '.ssh/kh_db')],
    source: join(home, '.ssh/config'),
  });
});

test('plain USER@ADDRESS:PORT, with defaults', () => {
  expect(resolveDestination('admin@10.1.1.1:2022', { home, hostsFiles: [] })).toMatchObject({
    address: '10.1.1.1',
    port: 2022,
    user: 'admin',
    knownHostsFiles: [join(home, '.ssh/known_hosts'), '/etc/ssh/ssh_known_hosts'],
    source: 'command line',
  });
});

test('a broken hosts file is a bad-input error naming the file', () => {
  const file = join(home, 'bad.yaml');
  writeFileSync(file, 'hosts:\n  h2: { adress: 10.0.0.2 }\n');
  expect(() => resolveDestination('h2', { home, hostsFiles: [file] })).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT', message: expect.stringContaining('unknown key "adress"') }));
});
