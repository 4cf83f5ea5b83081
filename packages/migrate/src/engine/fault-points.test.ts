import { FAULT_DELAY_MS, faultPoint, parseFaults } from './fault-points';

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

test('delay starts the step late and then lets it run', async () => {
  jest.useFakeTimers();
  try {
    let done = false;
    const step = faultPoint(parseFaults('commit:delay'), 'commit').then(() => (done = true));
    await jest.advanceTimersByTimeAsync(FAULT_DELAY_MS - 1);
    expect(done).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    await step;
    expect(done).toBe(true);
  } finally {
    jest.useRealTimers();
  }
});
