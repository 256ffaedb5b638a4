/** Streaming and int8 policies and the one int8 quantizer, checked as arithmetic (the real-model checks are in @kvfold/onnx). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { HostKvCache } from './host-kv-cache.ts';
import { int8Quantize, int8RoundTrip, int8Scales } from './int8.ts';
import { int8Policy } from './int8-policy.ts';
import type { KvLayout, KvRows } from './kv-layout.ts';
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

test('int8 round trips stay within half a step of each channel; a zero channel stays zero; non-finite values are refused', () => {
  const x = rowsAt(0, 50).layers[0]?.key as Float32Array;
  const scales = int8Scales((i) => x[i] as number, 2, 50, 8, 0, 50);
  const y = x.slice();
  int8RoundTrip(y, 2, 50, 8, 0, 50);
  for (let h = 0; h < 2; h++)
    for (let r = 0; r < 50; r++)
      for (let d = 0; d < 8; d++) {
        const s = scales[h * 8 + d] as number;
        const i = (h * 50 + r) * 8 + d;
        assert.ok(Math.abs((y[i] as number) - (x[i] as number)) <= s / 2 + 1e-7);
        assert.ok(Number.isInteger(Math.round((y[i] as number) / s)) && Math.abs(int8Quantize(x[i] as number, s)) <= 127);
      }
  assert.equal(int8Quantize(5, 0), 0);
  const bad = Float32Array.of(1, Number.NaN);
  assert.throws(() => int8Scales((i) => bad[i] as number, 1, 2, 1, 0, 2), /head 0 row 1 dim 0 is NaN; int8 holds finite values only/);
});

test('int8 rounds each full group in place once it fills and leaves the newest rows exact', async () => {
  const p = int8Policy(16);
  const c = new HostKvCache(layout, 105);
  const exact = new HostKvCache(layout, 105);
  for (let t = 0; t < 100; t += 7) {
    await step(c, p, rowsAt(t, 7));
    await exact.append(rowsAt(t, 7));
  }
  assert.equal(c.length, 105);
  const a = await c.read(0, 105);
  const b = await exact.read(0, 105);
  let maxErr = 0;
  let changed = 0;
  for (const kind of ['key', 'value'] as const) {
    const x = a.layers[0]?.[kind] as Float32Array;
    const y = b.layers[0]?.[kind] as Float32Array;
    for (let h = 0; h < 2; h++)
      for (let r = 0; r < 105; r++)
        for (let d = 0; d < 8; d++) {
          const i = (h * 105 + r) * 8 + d;
          const err = Math.abs((x[i] as number) - (y[i] as number));
          if (r >= 96) assert.equal(err, 0, `row ${r} is in the unfilled group: exact`);
          if (err > 0) changed++;
          maxErr = Math.max(maxErr, err);
        }
  }
  assert.ok(changed > 0, 'the full groups were rounded');
  assert.ok(maxErr < 0.5, `values up to 105 quantized per channel: max error ${maxErr}`);
  // Each group was rounded once, over its own rows: the same as rounding the exact rows group by group.
  const once = (await exact.read(0, 105)).layers[0]?.value as Float32Array;
  const expected = once.slice();
  for (let g = 0; g < 96; g += 16) int8RoundTrip(expected, 2, 105, 8, g, g + 16);
  assert.deepEqual(a.layers[0]?.value, expected);
});

test('policy descriptions that cannot work are refused', () => {
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 0 }, 'f32', { invFreq }), /window must be an integer >= 1/);
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 64 }), /needs the model’s RoPE frequencies/);
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 64 }, 'int8', { invFreq }), /full policy only/);
  assert.equal(createPolicy({ kind: 'full' }, 'int8').name, 'full+int8');
});
