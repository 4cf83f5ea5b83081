import { Reverter } from './reverter';

test('undoes in reverse order, keeps going past failures, and forgets released steps', async () => {
  const done: string[] = [];
  const revert = new Reverter();
  revert.add('a', () => void done.push('a'));
  const b = revert.add('b', () => {
    throw new Error('b failed');
  });
  revert.add('c', async () => void done.push('c'));
  revert.add('d', () => void done.push('d')).release();
  const failures = await revert.fail();
  expect(done).toEqual(['c', 'a']);
  expect(failures.map((f) => f.step)).toEqual([b]);
  expect(await revert.fail()).toEqual([]);
});

test('success() hands the pending steps over and leaves nothing to undo', async () => {
  const done: string[] = [];
  const revert = new Reverter();
  revert.add('e', () => void done.push('e'));
  const rest = revert.success();
  await revert.fail();
  expect(done).toEqual([]);
  await rest.fail();
  expect(done).toEqual(['e']);
});
