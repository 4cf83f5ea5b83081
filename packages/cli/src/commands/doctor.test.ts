import { thpText } from './doctor';

test('the THP row explains a mode other than "always" and points at the measurement', () => {
  expect(thpText('always')).toBe('always');
  expect(thpText('madvise')).toMatch(/^madvise \(a restore faults the container's memory in 4 KiB pages; .*docs\/hash-precopy\.md\)$/);
  expect(thpText(undefined)).toBe('unknown');
});
