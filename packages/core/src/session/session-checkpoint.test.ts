import { isFerryError } from '../model/ferry-error';
import { parseSessionTarget } from './session-checkpoint';

describe('targets', () => {
  test.each([
    ['4242', { kind: 'pid', pid: 4242 }],
    ['tmux:work', { kind: 'tmux', session: 'work', socket: { name: 'x' } }],
    ['tmux', { kind: 'tmux', socket: { name: 'x' } }],
    ['tmux:', { kind: 'tmux', socket: { name: 'x' } }],
    ['screen:8386.work', { kind: 'screen', id: '8386.work' }],
  ])('%s', (text, expected) => {
    expect(parseSessionTarget(text, { name: 'x' })).toEqual(expected);
  });

  test.each(['1', 'ssh:x', 'screen:', '', '-3'])('%j is refused as bad input', (text) => {
    let caught: unknown;
    try {
      parseSessionTarget(text);
    } catch (err) {
      caught = err;
    }
    expect(isFerryError(caught, 'ERR_PRECHECK_BAD_INPUT')).toBe(true);
  });
});
