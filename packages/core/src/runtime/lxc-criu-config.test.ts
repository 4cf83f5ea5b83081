import { lxcCriuConfigText } from './lxc-criu-config';

test('one long option per line, only what was asked for', () => {
  expect(lxcCriuConfigText({})).toBe('');
  expect(lxcCriuConfigText({ tcpEstablished: true, fileLocks: false, workDir: '/var/lib/ferry/w' })).toBe('tcp-established\nwork-dir /var/lib/ferry/w\n');
  expect(lxcCriuConfigText({ pageServer: { address: '127.0.0.1', port: 4000 } })).toBe('page-server\naddress 127.0.0.1\nport 4000\n');
});

test('a lazy dump listens for the lazy-pages daemon itself (no page-server); a lazy restore only says lazy-pages', () => {
  expect(lxcCriuConfigText({ lazyPages: { address: '127.0.0.1', port: 4001 } })).toBe('lazy-pages\naddress 127.0.0.1\nport 4001\n');
  expect(lxcCriuConfigText({ lazyPages: true, extUnixSk: true })).toBe('ext-unix-sk\nlazy-pages\n');
});

test('refuses values the config parser cannot carry', () => {
  expect(() => lxcCriuConfigText({ workDir: '/tmp/a b' })).toThrow(/cannot be written/);
  expect(() => lxcCriuConfigText({ workDir: 'relative' })).toThrow();
  expect(() => lxcCriuConfigText({ pageServer: { address: '127.0.0.1\nx', port: 1 } })).toThrow(/bad page server/);
  expect(() => lxcCriuConfigText({ pageServer: { address: '127.0.0.1', port: 70000 } })).toThrow(/bad page server/);
});
