import { UndoStack } from './undo-stack';

test('undoes in reverse order, keeps going past failures, and commit forgets everything', async () => {
  const done: string[] = [];
  const stack = new UndoStack();
  stack.push('a', () => void done.push('a'));
  stack.push('b', () => {
    throw new Error('b failed');
  });
  stack.push('c', async () => void done.push('c'));
  stack.push('d', () => void done.push('d'));
  stack.drop('d');
  const failures = await stack.run();
  expect(done).toEqual(['c', 'a']);
  expect(failures.map((f) => f.what)).toEqual(['b']);
  expect(await stack.run()).toEqual([]);
  stack.push('e', () => void done.push('e'));
  stack.commit();
  await stack.run();
  expect(done).toEqual(['c', 'a']);
});
