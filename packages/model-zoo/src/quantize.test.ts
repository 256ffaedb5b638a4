/**
 * Block quantization, element by element: the code layout MatMulNBits and GatherBlockQuantized
 * read, the error bound of the scheme, and the weights it refuses.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockQuantizer, dequantize } from './quantize.ts';
import { SeededRandom } from './rng.ts';

test('each block keeps its largest-magnitude element exactly, every other within half a step (a step where the codes end)', () => {
  const rng = new SeededRandom(3);
  const [n, k] = [5, 100]; // 100 = 3 blocks of 32 and a padded one of 4
  const data = rng.normals(n * k, 1.5);
  for (const bits of [4, 8] as const) {
    const q = new BlockQuantizer(bits, 32, false).quantize('w', { shape: [n, k], data });
    assert.deepEqual([q.kBlocks, q.blobBytes, q.packed.length, q.scales.length], [4, bits * 4, n * 4 * bits * 4, n * 4]);
    const back = dequantize(q, bits, 32);
    for (let row = 0; row < n; row++) {
      for (let b = 0; b < 4; b++) {
        const cols = Array.from({ length: Math.min(32, k - b * 32) }, (_, j) => row * k + b * 32 + j);
        const big = cols.reduce((m, i) => (Math.abs(data[i] as number) > Math.abs(data[m] as number) ? i : m));
        const step = Math.abs(q.scales[row * 4 + b] as number);
        assert.equal(back[big], Math.fround(data[big] as number), `row ${row} block ${b}: the largest element is exact`);
        const d = q.scales[row * 4 + b] as number;
        for (const i of cols) {
          // The codes reach zp - 1 on the far side of the largest element: one short of its mirror.
          const bound = (data[i] as number) / d <= (1 << (bits - 1)) - 0.5 ? step / 2 : step;
          assert.ok(Math.abs((back[i] as number) - (data[i] as number)) <= bound + 1e-6, `element ${i}`);
        }
      }
    }
  }
});

test('4-bit codes pack two a byte, the even element in the low nibble, around the zero point 8', () => {
  // One block [-8, -7, ..., 7, then 16 zeros]: the scale is -8 / -8 = 1, codes are x + 8.
  const data = Float32Array.from({ length: 32 }, (_, i) => (i < 16 ? i - 8 : 0));
  const q = new BlockQuantizer(4, 32, false).quantize('w', { shape: [1, 32], data });
  assert.equal(q.scales[0], 1);
  assert.deepEqual([...q.packed.subarray(0, 8)], [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
  assert.deepEqual([...q.packed.subarray(8)], new Array(8).fill(0x88));
  const q8 = new BlockQuantizer(8, 32, false).quantize('w', { shape: [1, 32], data });
  assert.equal(q8.scales[0], 8 / 128);
  assert.deepEqual([...q8.packed.subarray(0, 3)], [0, 16, 32]);
});

test('a block of zeros has a zero scale and reads back as zeros', () => {
  const q = new BlockQuantizer(4, 16, false).quantize('w', { shape: [2, 16], data: new Float32Array(32) });
  assert.deepEqual([...q.scales], [0, 0]);
  assert.deepEqual([...dequantize(q, 4, 16)], new Array(32).fill(0));
});

test('a NaN or infinite weight is refused naming the tensor and the element; odd block sizes are refused', () => {
  const data = new Float32Array(64);
  data[37] = Number.NaN;
  assert.throws(() => new BlockQuantizer(4, 32, false).quantize('model.layers.0.mlp.up_proj.weight', { shape: [2, 32], data }), {
    message: /weight model\.layers\.0\.mlp\.up_proj\.weight holds NaN at element 37 \(row 1, column 5\): it cannot be quantized/,
  });
  data[37] = Number.POSITIVE_INFINITY;
  assert.throws(() => new BlockQuantizer(8, 32, false).quantize('w', { shape: [2, 32], data }), /holds Infinity/);
  assert.throws(() => new BlockQuantizer(4, 24, false), /power of two >= 16/);
});
