/** The streaming policy at every cache width, and the int8 quantizers, checked as arithmetic (the real-model checks are in @kvfold/onnx). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostKvCache } from './host-kv-cache.ts';
import { float16Bits, float16Value } from './float16.ts';
import { int8Quantize, int8QuantizeRow, int8Scales } from './int8.ts';
import type { KvDtype, KvLayout, KvRows } from './kv-layout.ts';
import { createPolicy } from './policies.ts';
import { ropeFrequencies, rotateKeyRows } from './rope.ts';
import { streamingPolicy } from './streaming-policy.ts';

const layout: KvLayout = { layers: 1, kvHeads: 2, headDim: 8, dtype: 'float32', maxPositions: 1 << 20 };
const invFreq = ropeFrequencies(10000, layout.headDim);

/** A key of content `seed` rotated for `position`; values carry the absolute token index. */
function rowsAt(start: number, n: number): KvRows {
  const { kvHeads, headDim } = layout;
  const key = new Float32Array(kvHeads * n * headDim);
  const value = new Float32Array(kvHeads * n * headDim);
  for (let h = 0; h < kvHeads; h++)
    for (let r = 0; r < n; r++)
      for (let d = 0; d < headDim; d++) {
        key[(h * n + r) * headDim + d] = Math.sin(1 + h + d * 0.7 + (start + r) * 0.01);
        value[(h * n + r) * headDim + d] = start + r;
      }
  return { rows: n, layers: [{ key, value }] };
}

/** Appends a step's rows and lets the policy act, as a fold step does. */
async function step(cache: HostKvCache, policy: ReturnType<typeof createPolicy>, rows: KvRows): Promise<void> {
  await cache.append(rows);
  await policy.afterStep(cache, rows.rows);
}

test('rotations compose: rotating by a then b equals rotating by a + b', () => {
  const k = rowsAt(0, 3).layers[0]?.key as Float32Array;
  const a = k.slice();
  rotateKeyRows(a, 2, 3, 8, 0, 3, 700, invFreq);
  rotateKeyRows(a, 2, 3, 8, 0, 3, -300, invFreq);
  const b = k.slice();
  rotateKeyRows(b, 2, 3, 8, 0, 3, 400, invFreq);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs((a[i] as number) - (b[i] as number)) < 1e-5);
});

test('streaming keeps the sinks and the newest window, evicts the rest, and stays within its rows', async () => {
  const p = streamingPolicy({ sink: 2, window: 5, invFreq });
  const rows = p.rows(42, 3, 0);
  assert.equal(rows, 2 + 5 + 3);
  const c = new HostKvCache(layout, rows);
  let maxLength = 0;
  for (let t = 0; t < 40; t += 3) {
    await step(c, p, rowsAt(t, 3));
    maxLength = Math.max(maxLength, c.length);
  }
  assert.equal(maxLength, 7);
  assert.equal(c.capacity, rows, 'never grew');
  assert.equal(c.tokensSeen, 42);
  assert.equal(c.nextPosition, 7, 'positions are assigned within the cache');
  const v = (await c.read(0, 7)).layers[0]?.value as Float32Array;
  const tokenAt = (h: number, r: number) => v[(h * 7 + r) * 8];
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((r) => tokenAt(1, r)), [0, 1, 37, 38, 39, 40, 41], 'rows 2..36 were evicted');
  assert.equal(p.appendOnly, false);
});

test('streaming re-rotates kept keys to their new positions', async () => {
  const p = streamingPolicy({ sink: 1, window: 2, invFreq });
  const c = new HostKvCache(layout, 8);
  await step(c, p, rowsAt(0, 3)); // positions 0,1,2: nothing evicted
  await step(c, p, rowsAt(3, 2)); // 5 rows -> keep row 0 and rows 3,4, which move from positions 3,4 to 1,2
  const got = (await c.read(0, 3)).layers[0]?.key as Float32Array;
  const moved = (rowsAt(3, 2).layers[0] as KvRows['layers'][number]).key.slice() as Float32Array;
  rotateKeyRows(moved, 2, 2, 8, 0, 2, -2, invFreq);
  for (let h = 0; h < 2; h++)
    for (let r = 0; r < 2; r++)
      for (let d = 0; d < 8; d++) assert.ok(Math.abs((got[(h * 3 + 1 + r) * 8 + d] as number) - (moved[(h * 2 + r) * 8 + d] as number)) < 1e-6);
});

test('int8 per channel (the checkpoint codec) and per row (an int8 cache) stay within half a step; zeros stay zero; non-finite values are refused', () => {
  const x = rowsAt(0, 50).layers[0]?.key as Float32Array;
  const scales = int8Scales((i) => x[i] as number, 2, 50, 8, 0, 50);
  for (let h = 0; h < 2; h++)
    for (let r = 0; r < 50; r++)
      for (let d = 0; d < 8; d++) {
        const s = scales[h * 8 + d] as number;
        const i = (h * 50 + r) * 8 + d;
        assert.ok(Math.abs(int8Quantize(x[i] as number, s) * s - (x[i] as number)) <= s / 2 + 1e-7);
      }
  const codes = new Int8Array(8);
  const scale = int8QuantizeRow(x, 8, codes, 0, 8);
  assert.equal(Math.max(...[...codes].map(Math.abs)), 127, 'the largest value of the row takes the largest code');
  for (let d = 0; d < 8; d++) assert.ok(Math.abs((codes[d] as number) * scale - (x[8 + d] as number)) <= scale / 2 + 1e-7);
  assert.equal(int8QuantizeRow(new Float32Array(8), 0, codes, 0, 8), 0);
  assert.deepEqual([...codes], new Array(8).fill(0));
  assert.equal(int8Quantize(5, 0), 0);
  const bad = Float32Array.of(1, Number.NaN);
  assert.throws(() => int8Scales((i) => bad[i] as number, 1, 2, 1, 0, 2), /head 0 row 1 dim 0 is NaN; int8 holds finite values only/);
  assert.throws(() => int8QuantizeRow(bad, 0, codes, 0, 2), /element 1 of the row is NaN/);
});

/** Rows of the float32 `rows` at another width: float16 bits, or int8 codes with a scale per head row. */
function atWidth(rows: KvRows, dtype: KvDtype): KvRows {
  if (dtype === 'float32') return rows;
  const { kvHeads, headDim } = layout;
  return {
    rows: rows.rows,
    layers: rows.layers.map((l) => {
      const src = [l.key as Float32Array, l.value as Float32Array];
      if (dtype === 'float16') {
        const [key, value] = src.map((x) => Uint16Array.from(x, (v) => float16Bits(v))) as [Uint16Array, Uint16Array];
        return { key, value };
      }
      const [key, value] = src.map(() => new Int8Array(kvHeads * rows.rows * headDim)) as [Int8Array, Int8Array];
      const [keyScales, valueScales] = src.map(() => new Float32Array(kvHeads * rows.rows)) as [Float32Array, Float32Array];
      for (let i = 0; i < kvHeads * rows.rows; i++) {
        keyScales[i] = int8QuantizeRow(src[0] as Float32Array, i * headDim, key, i * headDim, headDim);
        valueScales[i] = int8QuantizeRow(src[1] as Float32Array, i * headDim, value, i * headDim, headDim);
      }
      return { key, value, keyScales, valueScales };
    }),
  };
}

/** Element i of a layer's K (or V) of `rows`, read back as a number. */
function readBack(rows: KvRows, kind: 'key' | 'value', i: number): number {
  const l = rows.layers[0] as KvRows['layers'][number];
  const data = l[kind];
  if (data instanceof Float32Array) return data[i] as number;
  if (data instanceof Uint16Array) return float16Value(data[i] as number);
  return (data[i] as number) * ((kind === 'key' ? l.keyScales : l.valueScales)?.[Math.floor(i / layout.headDim)] as number);
}

for (const dtype of ['float16', 'int8'] as const) {
  test(`a ${dtype} cache holds its rows at that width, and streaming turns its kept keys as a float32 cache does, within the width's step`, async () => {
    const at = { ...layout, dtype };
    const p = streamingPolicy({ sink: 1, window: 4, invFreq });
    const narrow = new HostKvCache(at, 8);
    const wide = new HostKvCache(layout, 8);
    assert.equal(narrow.allocatedBytes, dtype === 'float16' ? wide.allocatedBytes / 2 : (8 * 2 * 2 * (8 + 4)), 'int8: a byte a value and a float32 scale a head row');
    for (let t = 0; t < 12; t += 3) {
      await step(narrow, p, atWidth(rowsAt(t, 3), dtype));
      await step(wide, p, rowsAt(t, 3));
    }
    assert.deepEqual([narrow.length, narrow.nextPosition, narrow.tokensSeen], [wide.length, wide.nextPosition, wide.tokensSeen]);
    const [a, b] = [await narrow.read(0, narrow.length), await wide.read(0, wide.length)];
    // float16 keeps 11 significant bits; int8 a 127th of each row's largest value (~1 here), twice rounded for keys turned in place.
    const tolerance = dtype === 'float16' ? 2e-3 : 2 / 127;
    for (const kind of ['key', 'value'] as const) {
      for (let i = 0; i < 2 * narrow.length * 8; i++) {
        const want = readBack(b, kind, i);
        const scale = kind === 'value' ? Math.max(1, Math.abs(want)) : 1;
        assert.ok(Math.abs(readBack(a, kind, i) - want) <= tolerance * scale, `${kind} element ${i}: ${readBack(a, kind, i)} vs ${want}`);
      }
    }
    // Rows that go in at a width come back exactly as they went in.
    const exact = new HostKvCache(at, 4);
    const rows = atWidth(rowsAt(5, 3), dtype);
    await exact.append(atWidth(rowsAt(5, 3), dtype));
    assert.deepEqual(await exact.read(0, 3), rows);
  });
}

test('policy descriptions that cannot work are refused', () => {
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 0 }, { invFreq }), /window must be an integer >= 1/);
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 64 }), /needs the model’s RoPE frequencies/);
  assert.equal(createPolicy({ kind: 'full' }).name, 'full');
});
