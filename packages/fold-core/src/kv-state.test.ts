import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appendRows, emptyKv, type KvLayout, type KvRows, kvBytes, kvRowBytes, sliceRows } from './kv-state.ts';

const layout: KvLayout = { layers: 2, kvHeads: 3, headDim: 4, dtype: 'float32', maxPositions: 1024 };

/** Rows whose every element encodes (layer, k|v, head, absolute row, dim). */
function rowsFrom(start: number, n: number): KvRows {
  const tag = (l: number, kv: number) => {
    const a = new Float32Array(layout.kvHeads * n * layout.headDim);
    for (let h = 0; h < layout.kvHeads; h++)
      for (let r = 0; r < n; r++)
        for (let d = 0; d < layout.headDim; d++) a[(h * n + r) * layout.headDim + d] = l * 1e6 + kv * 1e5 + h * 1e4 + (start + r) * 10 + d;
    return a;
  };
  return { rows: n, layers: [0, 1].map((l) => ({ key: tag(l, 0), value: tag(l, 1) })) };
}

test('appending keeps each head contiguous as [kvHeads, rows, headDim]', () => {
  let s = emptyKv(layout);
  s = appendRows(s, rowsFrom(0, 5));
  s = appendRows(s, rowsFrom(5, 2));
  assert.equal(s.length, 7);
  assert.equal(s.nextPosition, 7);
  assert.equal(s.tokensSeen, 7);
  const key1 = s.layers[1]?.key as Float32Array;
  // head 2, row 6, dim 3 of layer 1's keys
  assert.equal(key1[(2 * 7 + 6) * 4 + 3], 1e6 + 2e4 + 63);
  assert.deepEqual(sliceRows(s, 5, 7), rowsFrom(5, 2));
  assert.equal(kvBytes(s), 7 * kvRowBytes(layout));
  assert.equal(kvRowBytes(layout), 2 * 2 * 3 * 4 * 4);
});

test('appending leaves the input state intact', () => {
  const a = appendRows(emptyKv(layout), rowsFrom(0, 3));
  const before = Array.from(a.layers[0]?.key as Float32Array);
  const b = appendRows(a, rowsFrom(3, 4));
  assert.equal(a.length, 3);
  assert.deepEqual(Array.from(a.layers[0]?.key as Float32Array), before);
  assert.equal(b.length, 7);
});

test('rows of the wrong shape are refused', () => {
  const bad: KvRows = { rows: 2, layers: [{ key: new Float32Array(3), value: new Float32Array(3) }] };
  assert.throws(() => appendRows(emptyKv(layout), bad), /rows have 1 layers, the cache has 2/);
  const short = rowsFrom(0, 2);
  assert.throws(() => appendRows(emptyKv(layout), { ...short, rows: 3 }), /expected 36 elements/);
});

test('float16 caches move as raw bits', () => {
  const l16: KvLayout = { ...layout, dtype: 'float16' };
  const rows: KvRows = {
    rows: 1,
    layers: [0, 1].map(() => ({ key: new Uint16Array(12).fill(0x3c00), value: new Uint16Array(12).fill(0xbc00) })),
  };
  const s = appendRows(emptyKv(l16), rows);
  assert.ok(s.layers[0]?.key instanceof Uint16Array);
  assert.equal(s.layers[0]?.value[0], 0xbc00);
  assert.equal(kvBytes(s), 2 * 2 * 12 * 2);
});
