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

describe('#14: names that are not in any file, and ssh_config as OpenSSH reads it', () => {
  test('prototype names (constructor, __proto__, toString) are host names, not inherited lookups', () => {
    const file = join(home, 'hosts.yaml');
    writeFileSync(file, 'hosts:\n  h2: { address: 10.0.0.2 }\n');
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(resolveDestination(name, { home, hostsFiles: [file] })).toMatchObject({ address: name, source: 'command line' });
    }
  });

  test('Port that is not a number or out of range is a bad-input error naming ~/.ssh/config', () => {
    for (const port of ['abc', '99999', '0']) {
      writeFileSync(join(home, '.ssh/config'), `Host db\n  Port ${port}\n`);
      expect(() => resolveDestination('db', { home, hostsFiles: [] })).toThrow(
        expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT', message: expect.stringContaining(join(home, '.ssh/config')) }),
      );
    }
  });

  test('Include and Match host are honoured', () => {
    mkdirSync(join(home, '.ssh/config.d'));
    writeFileSync(join(home, '.ssh/config.d/db.conf'), 'Host db\n  HostName 192.0.2.9\n');
    // OpenSSH: `Match host` sees the name after HostName, `Match originalhost` the one typed.
    writeFileSync(join(home, '.ssh/config'), 'Include config.d/*.conf\nMatch originalhost db\n  User dba\nMatch host 192.0.2.9\n  Port 2201\n');
    expect(resolveDestination('db', { home, hostsFiles: [] })).toMatchObject({ address: '192.0.2.9', user: 'dba', port: 2201 });
  });

  test('ProxyJump resolves the jump host too; ProxyCommand is refused with a hint', () => {
    writeFileSync(join(home, '.ssh/config'), 'Host inner\n  HostName 10.9.0.5\n  ProxyJump ops@bastion:2222\nHost piped\n  ProxyCommand nc %h %p\n');
    const inner = resolveDestination('inner', { home, hostsFiles: [] });
    expect(inner).toMatchObject({ address: '10.9.0.5', jump: { address: 'bastion', user: 'ops', port: 2222 } });
    expect(() => resolveDestination('piped', { home, hostsFiles: [] })).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT', hint: expect.stringContaining('ProxyJump') }));
  });

  test('a hosts file that is a directory, or named but missing, is a clear error', () => {
    mkdirSync(join(home, 'hosts-dir'));
    expect(() => resolveDestination('h2', { home, hostsFiles: [join(home, 'hosts-dir')] })).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
    expect(() => resolveDestination('h2', { home, hostsFiles: [join(home, 'missing.yaml')], hostsFilesGiven: true })).toThrow(
      expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT', message: expect.stringContaining('missing.yaml') }),
    );
  });

  test('a host name that starts with - is refused (it would read as an option to ssh tools)', () => {
    for (const name of ['-oProxyCommand=touch', '-oProxyCommand', 'root@-x']) {
      expect(() => resolveDestination(name, { home, hostsFiles: [] })).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
    }
  });
});
