/**
 * The int8 codec: symmetric per-channel quantisation. One scale per (head, dim) channel of one
 * layer's K or V, over the segment's rows: scale = max|x| / 127, q = round(x / scale). Decoding
 * gives q * scale, so every value is within scale / 2 of the original.
 */
import { checkpointErrors } from './errors.ts';
import { f16BitsToF32, f32ToF16Bits } from './half.ts';

/** Largest int8 magnitude used, so the range is symmetric. */
const QMAX = 127;

/** Reads element i of K/V data as a number (float16 bits decoded). */
type Reader = (i: number) => number;

/**
 * Quantises a [kvHeads, rows, headDim] tensor. Returns the scales [kvHeads, headDim] and the
 * values [kvHeads, rows, headDim]. Throws on non-finite values, which int8 cannot hold.
 */
export function quantizeInt8(
  read: Reader,
  kvHeads: number,
  rows: number,
  headDim: number,
  what: string,
): { scales: Float32Array; values: Int8Array } {
  const scales = new Float32Array(kvHeads * headDim); // [kvHeads, headDim]
  const values = new Int8Array(kvHeads * rows * headDim); // [kvHeads, rows, headDim]
  for (let h = 0; h < kvHeads; h++) {
    const base = h * rows * headDim;
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < headDim; d++) {
        const x = read(base + r * headDim + d);
        if (!Number.isFinite(x)) {
          throw checkpointErrors.badState(`${what} head ${h} row ${r} dim ${d} is ${x}; the int8 codec holds finite values only (use f16 or f32)`);
        }
        const a = Math.abs(x);
        if (a > (scales[h * headDim + d] as number)) scales[h * headDim + d] = a;
      }
    }
  }
  for (let i = 0; i < scales.length; i++) scales[i] = (scales[i] as number) / QMAX;
  for (let h = 0; h < kvHeads; h++) {
    const base = h * rows * headDim;
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < headDim; d++) {
        const i = base + r * headDim + d;
        const s = scales[h * headDim + d] as number;
        const q = s === 0 ? 0 : Math.round(read(i) / s);
        values[i] = Math.max(-QMAX, Math.min(QMAX, q));
      }
    }
  }
  return { scales, values };
}

/** Dequantises into float32 values or float16 bits, per the output array's type. */
export function dequantizeInt8(
  scales: Float32Array,
  values: Int8Array,
  kvHeads: number,
  rows: number,
  headDim: number,
  out: Float32Array | Uint16Array,
): void {
  const half = out instanceof Uint16Array;
  for (let h = 0; h < kvHeads; h++) {
    const base = h * rows * headDim;
    for (let r = 0; r < rows; r++) {
      for (let d = 0; d < headDim; d++) {
        const i = base + r * headDim + d;
        const x = (values[i] as number) * (scales[h * headDim + d] as number);
        out[i] = half ? f32ToF16Bits(x) : x;
      }
    }
  }
}

/** A reader over float32 data or float16 bits. */
export function readerOf(data: Float32Array | Uint16Array): Reader {
  if (data instanceof Float32Array) return (i) => data[i] as number;
  return (i) => f16BitsToF32(data[i] as number);
}
