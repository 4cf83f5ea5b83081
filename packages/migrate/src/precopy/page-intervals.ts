/** Sets of pages as sorted, disjoint [first page, end page) intervals. */

export type Interval = [number, number];

/** Union of two sorted interval lists. */
export function union(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const all = [...a, ...b].sort((x, y) => x[0] - y[0]);
  const out: Interval[] = [];
  for (const [s, e] of all) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

/** Cuts `held` (sorted, disjoint) into pieces inside or outside `present` (sorted, disjoint, within held). */
export function split(held: readonly Interval[], present: readonly Interval[]): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  let p = 0;
  for (const [s, e] of held) {
    let at = s;
    while (at < e) {
      while (p < present.length && present[p]![1] <= at) p++;
      const next = present[p];
      if (next && next[0] <= at) {
        const end = Math.min(e, next[1]);
        out.push([at, end, true]);
        at = end;
      } else {
        const end = next ? Math.min(e, next[0]) : e;
        out.push([at, end, false]);
        at = end;
      }
    }
  }
  return out;
}

/** The parts of `a` outside `b` (both sorted and disjoint). */
export function subtract(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const [start, end] of a) {
    while (j < b.length && b[j]![1] <= start) j++;
    let at = start;
    for (let k = j; at < end; k++) {
      const cut = b[k];
      if (!cut || cut[0] >= end) {
        out.push([at, end]);
        break;
      }
      if (cut[0] > at) out.push([at, cut[0]]);
      at = Math.max(at, cut[1]);
    }
  }
  return out;
}
