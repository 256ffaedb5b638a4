/**
 * Test support: random KV rows, the caches a fold would hold after each step (fold-core's own
 * HostKvCache), and bit-level comparison of caches.
 */
import assert from 'node:assert/strict';
import { float16Bits, HostKvCache, int8QuantizeRow, type KvCache, type KvData, type KvLayout, type KvRows, seededRandom } from '@kvfold/fold-core';

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
export const rng = seededRandom;

export const LAYOUT32: KvLayout = { layers: 3, kvHeads: 2, headDim: 8, dtype: 'float32', maxPositions: 4096 };
export const LAYOUT16: KvLayout = { ...LAYOUT32, dtype: 'float16' };
export const LAYOUT8: KvLayout = { ...LAYOUT32, dtype: 'int8' };

/** Random rows: values roughly N(0, scale) as float32, their f16 bits, or int8 codes with a scale per head row. */
export function randomRows(layout: KvLayout, rows: number, next: () => number, scale = 3): KvRows {
  const n = layout.kvHeads * rows * layout.headDim;
  const floats = () => new Float32Array(n).map(() => (next() - 0.5 + (next() - 0.5)) * scale);
  const int8 = () => {
    const f = floats();
    const codes = new Int8Array(n);
    const scales = Float32Array.from({ length: layout.kvHeads * rows }, (_, i) => int8QuantizeRow(f, i * layout.headDim, codes, i * layout.headDim, layout.headDim));
    return { codes, scales };
  };
  const make = (): KvData => (layout.dtype === 'float32' ? floats() : Uint16Array.from(floats(), (x) => float16Bits(x)));
  return {
    rows,
    layers: Array.from({ length: layout.layers }, () => {
      if (layout.dtype !== 'int8') return { key: make(), value: make() };
      const [k, v] = [int8(), int8()];
      return { key: k.codes, value: v.codes, keyScales: k.scales, valueScales: v.scales };
    }),
  };
}

/** The caches after each of `steps` steps of `rowsPerStep` random rows (each its own cache). */
export function foldStates(layout: KvLayout, steps: number, rowsPerStep: number, seed = 1): HostKvCache[] {
  const next = rng(seed);
  const stepRows = Array.from({ length: steps }, () => randomRows(layout, rowsPerStep, next));
  return stepRows.map((_, i) => {
    const cache = new HostKvCache(layout, (i + 1) * rowsPerStep);
    for (const rows of stepRows.slice(0, i + 1)) cache.buffer.append(rows);
    return cache;
  });
}

/** Asserts two caches hold identical rows and positions, bit for bit. */
export async function assertSameState(actual: KvCache | undefined, expected: KvCache): Promise<void> {
  assert.ok(actual, 'a cache was loaded');
  assert.deepEqual(
    { length: actual.length, nextPosition: actual.nextPosition, tokensSeen: actual.tokensSeen },
    { length: expected.length, nextPosition: expected.nextPosition, tokensSeen: expected.tokensSeen },
  );
  const [a, e] = [await actual.read(0, actual.length), await expected.read(0, expected.length)];
  e.layers.forEach((l, i) => {
    const x = a.layers[i];
    assert.ok(x, `layer ${i} present`);
    assert.ok(Buffer.from(bytes(x.key)).equals(Buffer.from(bytes(l.key))), `layer ${i} K bit-exact`);
    assert.ok(Buffer.from(bytes(x.value)).equals(Buffer.from(bytes(l.value))), `layer ${i} V bit-exact`);
    for (const kind of ['keyScales', 'valueScales'] as const) {
      const [got, want] = [x[kind], l[kind]];
      assert.ok(got === want || (got && want && Buffer.from(bytes(got)).equals(Buffer.from(bytes(want)))), `layer ${i} ${kind} bit-exact`);
    }
  });
}

function bytes(d: KvData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}
