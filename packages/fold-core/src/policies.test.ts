/** Streaming and int8 policies, checked as arithmetic (the real-model checks are in @kvfold/onnx). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { int8Policy, quantizeChannels } from './int8.ts';
import { emptyKv, type KvLayout, type KvRows, type KvState } from './kv-state.ts';
import { createPolicy } from './policies.ts';
import { ropeFrequencies, rotateKeyRows } from './rope.ts';
import { streamingPolicy } from './streaming.ts';

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

test('rotations compose: rotating by a then b equals rotating by a + b', () => {
  const k = rowsAt(0, 3).layers[0]?.key as Float32Array;
  const a = k.slice();
  rotateKeyRows(a, 2, 3, 8, 0, 3, 700, invFreq);
  rotateKeyRows(a, 2, 3, 8, 0, 3, -300, invFreq);
  const b = k.slice();
  rotateKeyRows(b, 2, 3, 8, 0, 3, 400, invFreq);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs((a[i] as number) - (b[i] as number)) < 1e-5);
});

test('streaming keeps the sinks and the newest window, and stays bounded', () => {
  const p = streamingPolicy({ sink: 2, window: 5, invFreq });
  let s: KvState = emptyKv(layout);
  let maxLength = 0;
  for (let t = 0; t < 40; t += 3) {
    s = p.admit(s, rowsAt(t, 3));
    maxLength = Math.max(maxLength, s.length);
  }
  assert.equal(maxLength, 7);
  assert.equal(s.tokensSeen, 42);
  assert.equal(s.nextPosition, 7, 'positions are assigned within the cache');
  const v = s.layers[0]?.value as Float32Array;
  const tokenAt = (h: number, r: number) => v[(h * 7 + r) * 8];
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6].map((r) => tokenAt(1, r)), [0, 1, 37, 38, 39, 40, 41]);
  assert.equal(p.appendOnly, false);
});

test('streaming re-rotates kept keys to their new positions', () => {
  const p = streamingPolicy({ sink: 1, window: 2, invFreq });
  let s: KvState = emptyKv(layout);
  s = p.admit(s, rowsAt(0, 3)); // positions 0,1,2: nothing evicted
  s = p.admit(s, rowsAt(3, 2)); // 5 rows -> keep row 0 and rows 3,4, which move from positions 3,4 to 1,2
  const got = s.layers[0]?.key as Float32Array;
  const expected = rowsAt(3, 2).layers[0]?.key as Float32Array; // rotated "for" positions 3,4 by construction
  const moved = expected.slice();
  rotateKeyRows(moved, 2, 2, 8, 0, 2, -2, invFreq);
  for (let h = 0; h < 2; h++)
    for (let r = 0; r < 2; r++)
      for (let d = 0; d < 8; d++) assert.ok(Math.abs((got[(h * 3 + 1 + r) * 8 + d] as number) - (moved[(h * 2 + r) * 8 + d] as number)) < 1e-6);
});

test('int8 quantization error stays within half a step of each channel', () => {
  const x = rowsAt(0, 50).layers[0]?.key as Float32Array;
  const q = quantizeChannels(x, 2, 50, 8);
  for (let h = 0; h < 2; h++)
    for (let r = 0; r < 50; r++)
      for (let d = 0; d < 8; d++) {
        const s = q.scale[h * 8 + d] as number;
        const i = (h * 50 + r) * 8 + d;
        assert.ok(Math.abs((q.data[i] as number) * s - (x[i] as number)) <= s / 2 + 1e-7);
      }
});

test('int8 keeps every row, quantizes full groups, and holds about a quarter of the bytes', () => {
  const p = int8Policy(16);
  const full = createPolicy({ kind: 'full' });
  let s = p.init(layout);
  let f = full.init(layout);
  for (let t = 0; t < 100; t += 7) {
    s = p.admit(s, rowsAt(t, 7));
    f = full.admit(f, rowsAt(t, 7));
  }
  assert.equal(s.length, 105);
  assert.equal(s.groups.length, 6);
  assert.equal(s.tail.length, 9);
  const view = p.view(s);
  const ref = full.view(f);
  assert.equal(view.length, 105);
  let maxErr = 0;
  for (const kind of ['key', 'value'] as const) {
    const a = view.layers[0]?.[kind] as Float32Array;
    const b = ref.layers[0]?.[kind] as Float32Array;
    for (let i = 0; i < a.length; i++) maxErr = Math.max(maxErr, Math.abs((a[i] as number) - (b[i] as number)));
  }
  assert.ok(maxErr < 0.5, `values up to 105 quantized per channel: max error ${maxErr}`);
  // The float tail is exact.
  const tailRow = (view.layers[0]!.value as Float32Array)[(0 * 105 + 100) * 8];
  assert.equal(tailRow, 100);
  const ratio = p.bytes(s) / full.bytes(f);
  assert.ok(ratio < 0.45 && ratio > 0.25, `int8 / f32 bytes = ${ratio}`);
});

test('policy descriptions that cannot work are refused', () => {
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 0 }, 'f32', { invFreq }), /window must be an integer >= 1/);
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 64 }), /needs the model’s RoPE frequencies/);
  assert.throws(() => createPolicy({ kind: 'streaming', sink: 4, window: 64 }, 'int8', { invFreq }), /full policy only/);
});
