/** float16 and bfloat16 conversions: exhaustive round trips, ties to even, range edges. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bfloat16Bits, bfloat16ToFloat32, float16Bits, float16ToFloat32, float16Value, roundToBfloat16 } from './float16.ts';

test('every float16 bit pattern decodes and encodes back to itself (NaNs stay NaN)', () => {
  for (let h = 0; h < 65536; h++) {
    const v = float16Value(h);
    if (Number.isNaN(v)) assert.ok(Number.isNaN(float16Value(float16Bits(v))), `NaN ${h.toString(16)}`);
    else assert.equal(float16Bits(v), h, `bits ${h.toString(16)} -> ${v}`);
  }
});

test('float16 values at the edges: max, min subnormal, infinities, overflow, underflow', () => {
  assert.equal(float16Value(0x7bff), 65504);
  assert.equal(float16Value(0x0001), 2 ** -24);
  assert.equal(float16Value(0x0400), 2 ** -14);
  assert.equal(float16Bits(65519), 0x7bff, 'just under the rounding point stays finite');
  assert.equal(float16Bits(65520), 0x7c00, 'the rounding point goes to Infinity');
  assert.equal(float16Bits(-1e9), 0xfc00);
  assert.equal(float16Bits(2 ** -26), 0, 'below half the smallest subnormal rounds to zero');
  assert.equal(float16Bits(-0), 0x8000);
});

test('float16 rounds ties to even, in normals and subnormals', () => {
  // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: to even (1).
  assert.equal(float16Bits(1 + 2 ** -11), 0x3c00);
  // 1 + 3·2^-11 lies halfway between 1 + 2^-10 and 1 + 2^-9: to even (1 + 2^-9).
  assert.equal(float16Bits(1 + 3 * 2 ** -11), 0x3c02);
  assert.equal(float16Bits(1.5 * 2 ** -24), 0x0002, 'subnormal 1.5 -> 2');
  assert.equal(float16Bits(2.5 * 2 ** -24), 0x0002, 'subnormal 2.5 -> 2');
  assert.equal(float16Bits(2 ** -25), 0, 'half the smallest subnormal -> 0');
});

test('bfloat16 is the upper half of float32, rounded to nearest even', () => {
  assert.equal(bfloat16Bits(1), 0x3f80);
  assert.equal(bfloat16Bits(-2), 0xc000);
  assert.equal(bfloat16Bits(1 + 2 ** -8), 0x3f80, 'a tie goes to even');
  assert.equal(bfloat16Bits(1 + 3 * 2 ** -8), 0x3f82, 'a tie goes to even (up)');
  assert.equal(roundToBfloat16(Math.PI), 3.140625);
  assert.ok(Number.isNaN(roundToBfloat16(Number.NaN)));
  const out = new Float32Array(3);
  bfloat16ToFloat32(Uint16Array.of(0x3f80, 0xc000, 0x4049), out);
  assert.deepEqual(Array.from(out), [1, -2, 3.140625]);
  float16ToFloat32(Uint16Array.of(0x3c00, 0xc000, 0x7bff), out);
  assert.deepEqual(Array.from(out), [1, -2, 65504]);
});
