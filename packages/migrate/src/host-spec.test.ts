import { isFerryError } from '@ferry/core';
import { formatHostSpec, parseHostSpec } from './host-spec';

describe('parseHostSpec', () => {
  it.each([
    ['host2', { user: undefined, host: 'host2', port: undefined }],
    ['root@10.99.0.2', { user: 'root', host: '10.99.0.2', port: undefined }],
    ['root@10.99.0.2:2222', { user: 'root', host: '10.99.0.2', port: 2222 }],
    ['admin@[fd00::2]:22', { user: 'admin', host: 'fd00::2', port: 22 }],
    ['[fd00::2]', { user: undefined, host: 'fd00::2', port: undefined }],
  ])('parses %s', (text, expected) => {
    expect(parseHostSpec(text)).toEqual(expected);
    expect(formatHostSpec(parseHostSpec(text))).toBe(text);
  });

  it.each(['', 'a b', 'root@', 'host:0', 'host:70000', 'host:x', 'fd00::2', 'r;m@host', 'host;rm'])('rejects %j with a bad-input error', (text) => {
    let caught: unknown;
    try {
      parseHostSpec(text);
    } catch (err) {
      caught = err;
    }
    expect(isFerryError(caught, 'ERR_PRECHECK_BAD_INPUT')).toBe(true);
    expect((caught as { hint?: string }).hint).toMatch(/USER@ADDRESS/);
  });
});
