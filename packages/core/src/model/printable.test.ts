import { printable } from './printable';

test('control characters are escaped and long text is cut', () => {
  expect(printable('h2\nferry agent: committed')).toBe('h2\\x0aferry agent: committed');
  expect(printable('\u001b[2Jgone')).toBe('\\x1b[2Jgone');
  expect(printable('x'.repeat(300), 10)).toBe(`${'x'.repeat(10)}...`);
  expect(printable('plain host-1.example')).toBe('plain host-1.example');
  expect(printable('a\n  log line\u001b[1m', 100, { newlines: true })).toBe('a\n  log line\\x1b[1m');
});
