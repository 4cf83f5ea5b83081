import { LazyTodo, todoFromImages } from './lazy-todo';

const list = (t: LazyTodo) => {
  const out = [];
  for (let r = t.clone().takeFirst(1e9); r; ) {
    out.push([r.start, r.end, r.img]);
    r = undefined;
  }
  return out;
};

test('todoFromImages cuts lazy ranges at VMA ends and drops what no VMA covers', () => {
  expect(todoFromImages([[10, 30], [40, 45]], [[0, 20], [20, 35], [41, 50]])).toEqual([
    { start: 10, end: 20, img: 10 },
    { start: 20, end: 30, img: 20 },
    { start: 41, end: 45, img: 41 },
  ]);
});

test('takeAt takes from the faulting page within its range, never across ranges', () => {
  const t = new LazyTodo([{ start: 10, end: 20, img: 10 }, { start: 20, end: 30, img: 20 }]);
  expect(t.takeAt(18, 16)).toEqual({ start: 18, end: 20, img: 18 });
  expect(t.has(18)).toBe(false);
  expect(t.has(17)).toBe(true);
  expect(t.takeAt(5, 16)).toBeUndefined();
  expect(t.pages).toBe(18);
  expect(list(t)).toEqual([[10, 18, 10]]);
});

test('drop forgets a range across several entries and keeps image offsets of what is left', () => {
  const t = new LazyTodo([{ start: 0, end: 10, img: 100 }, { start: 10, end: 20, img: 10 }]);
  t.drop(5, 15);
  expect(t.takeFirst(100)).toEqual({ start: 0, end: 5, img: 100 });
  expect(t.takeFirst(100)).toEqual({ start: 15, end: 20, img: 15 });
  expect(t.empty).toBe(true);
});

test('remap moves what is to do with its image place, and only the moved part', () => {
  const t = new LazyTodo([{ start: 100, end: 120, img: 100 }]);
  t.remap(110, 500, 20); // [110, 130) -> [500, 520): only [110, 120) was to do
  expect(t.has(115)).toBe(false);
  expect(t.takeAt(500, 100)).toEqual({ start: 500, end: 510, img: 110 });
  expect(t.takeFirst(100)).toEqual({ start: 100, end: 110, img: 100 });
  expect(t.empty).toBe(true);
});

test('add puts ranges back (replacing overlaps) and a clone is independent', () => {
  const t = new LazyTodo([{ start: 0, end: 4, img: 0 }]);
  const c = t.clone();
  t.takeFirst(4);
  c.add([{ start: 8, end: 10, img: 8 }]);
  expect(t.empty).toBe(true);
  expect(c.pages).toBe(6);
});
