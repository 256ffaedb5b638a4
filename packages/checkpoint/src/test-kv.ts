/**
 * Test support: random KV states built with fold-core's own `emptyKv` / `appendRows`, and
 * bit-level comparison of states.
 */
import assert from 'node:assert/strict';
import { appendRows, emptyKv, type KvData, type KvLayout, type KvRows, type KvState } from '@kvfold/fold-core';
import { f32ToF16Bits } from './half.ts';

/** A small deterministic PRNG (mulberry32), so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const LAYOUT32: KvLayout = { layers: 3, kvHeads: 2, headDim: 8, dtype: 'float32', maxPositions: 4096 };
export const LAYOUT16: KvLayout = { ...LAYOUT32, dtype: 'float16' };

/** Random rows: values roughly N(0, scale) as float32, or their f16 bits. */
export function randomRows(layout: KvLayout, rows: number, next: () => number, scale = 3): KvRows {
  const n = layout.kvHeads * rows * layout.headDim;
  const make = (): KvData => {
    const f = new Float32Array(n).map(() => (next() - 0.5 + (next() - 0.5)) * scale);
    return layout.dtype === 'float32' ? f : Uint16Array.from(f, (x) => f32ToF16Bits(x));
  };
  return { rows, layers: Array.from({ length: layout.layers }, () => ({ key: make(), value: make() })) };
}

/** The states after each of `steps` steps of `rowsPerStep` random rows. */
export function foldStates(layout: KvLayout, steps: number, rowsPerStep: number, seed = 1): KvState[] {
  const next = rng(seed);
  const out: KvState[] = [];
  let s = emptyKv(layout);
  for (let i = 0; i < steps; i++) {
    s = appendRows(s, randomRows(layout, rowsPerStep, next));
    out.push(s);
  }
  return out;
}

/** Asserts two states are identical bit for bit. */
export function assertSameState(actual: KvState, expected: KvState): void {
  assert.deepEqual(
    { length: actual.length, nextPosition: actual.nextPosition, tokensSeen: actual.tokensSeen, layout: actual.layout },
    { length: expected.length, nextPosition: expected.nextPosition, tokensSeen: expected.tokensSeen, layout: expected.layout },
  );
  expected.layers.forEach((l, i) => {
    const a = actual.layers[i];
    assert.ok(a, `layer ${i} present`);
    assert.ok(Buffer.from(bytes(a.key)).equals(Buffer.from(bytes(l.key))), `layer ${i} K bit-exact`);
    assert.ok(Buffer.from(bytes(a.value)).equals(Buffer.from(bytes(l.value))), `layer ${i} V bit-exact`);
  });
}

function bytes(d: KvData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}
