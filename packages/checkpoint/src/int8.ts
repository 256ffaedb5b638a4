/**
 * The int8 codec: fold-core's per-channel symmetric quantizer (the project's one int8 quantizer)
 * over a segment's rows. One scale per (head, dim) channel of one layer's K or V: decoding gives
 * q * scale, so every value is within scale / 2 of the original.
 */
import { float16Bits, float16Value, int8Quantize, int8Scales } from '@kvfold/fold-core';
import { checkpointErrors } from './errors.ts';

/** Reads element i of K/V data as a number (float16 bits decoded). */
type Reader = (i: number) => number;

/**
 * Quantises a [kvHeads, rows, headDim] tensor. Returns the scales [kvHeads, headDim] and the
 * values [kvHeads, rows, headDim]. Throws on non-finite values, which int8 cannot hold.
 */
export function quantizeInt8(read: Reader, kvHeads: number, rows: number, headDim: number, what: string): { scales: Float32Array; values: Int8Array } {
  let scales: Float32Array; // [kvHeads, headDim]
  try {
    scales = int8Scales(read, kvHeads, rows, headDim, 0, rows);
  } catch (err) {
    throw checkpointErrors.badState(`${what}: ${(err as Error).message} (use the f16 or f32 codec)`);
  }
  const values = new Int8Array(kvHeads * rows * headDim); // [kvHeads, rows, headDim]
  for (let i = 0; i < values.length; i++) values[i] = int8Quantize(read(i), scales[Math.floor(i / (rows * headDim)) * headDim + (i % headDim)] as number);
  return { scales, values };
}

/** Dequantises into float32 values or float16 bits, per the output array's type. */
export function dequantizeInt8(scales: Float32Array, values: Int8Array, kvHeads: number, rows: number, headDim: number, out: Float32Array | Uint16Array): void {
  const half = out instanceof Uint16Array;
  for (let h = 0; h < kvHeads; h++) {
    const base = h * rows * headDim;
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < headDim; d++) {
        const i = base + r * headDim + d;
        const x = (values[i] as number) * (scales[h * headDim + d] as number);
        out[i] = half ? float16Bits(x) : x;
      }
    }
  }
}

/** A reader over float32 data or float16 bits. */
export function readerOf(data: Float32Array | Uint16Array): Reader {
  if (data instanceof Float32Array) return (i) => data[i] as number;
  return (i) => float16Value(data[i] as number);
}
