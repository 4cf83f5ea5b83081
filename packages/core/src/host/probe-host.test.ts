import { thpMode } from './probe-host';

test("the THP mode is the bracketed word of the kernel's file; a missing file says nothing", () => {
  expect(thpMode('always [madvise] never\n')).toBe('madvise');
  expect(thpMode('[always] madvise never')).toBe('always');
  expect(thpMode(undefined)).toBeUndefined();
  expect(thpMode('garbage')).toBeUndefined();
});
