import { faultPoint, parseFaults } from './fault-points';

test('parses point:action lists and leaves other fault hooks alone', () => {
  expect(parseFaults(undefined)).toEqual([]);
  expect(parseFaults('restore-fails')).toEqual([]);
  expect(parseFaults('checkpoint:kill9, commit:throw')).toEqual([
    { point: 'checkpoint', action: 'kill9' },
    { point: 'commit', action: 'throw' },
  ]);
  expect(() => parseFaults('checkpoint:explode')).toThrow(expect.objectContaining({ code: 'ERR_PRECHECK_BAD_INPUT' }));
});

test('throw fails the step with its own code; other points pass', async () => {
  const faults = parseFaults('restore:throw');
  await expect(faultPoint(faults, 'restore')).rejects.toMatchObject({ code: 'ERR_FAULT_INJECTED' });
  await expect(faultPoint(faults, 'commit')).resolves.toBeUndefined();
});
