/**
 * Symmetric per-channel int8 quantization, the one quantizer of the project (the checkpoint
 * codec and the int8 cache policy both use it).
 *
 * For each (head, dim) channel of one K or V tensor, over a range of rows:
 *   scale = max |x| / 127 (stored as float32), q = clamp(round(x / scale), -127, 127), x' = q * scale
 * so every value comes back within scale / 2. Channels are scaled separately because key
 * channels differ in magnitude by orders (RoPE pairs, outlier channels). A channel of zeros has
 * scale 0 and quantizes to 0. Non-finite values cannot be held and are refused.
 */

/** Largest int8 magnitude used, so the range is symmetric. */
export const INT8_MAX = 127;

/**
 * Scales [kvHeads, headDim] of rows [from, to) of a [kvHeads, stride, headDim] tensor whose
 * element i reads as `at(i)`. Throws a RangeError naming the first non-finite element.
 */
export function int8Scales(at: (i: number) => number, kvHeads: number, stride: number, headDim: number, from: number, to: number): Float32Array {
  const max = new Float64Array(kvHeads * headDim);
  for (let h = 0; h < kvHeads; h++)
    for (let r = from; r < to; r++) {
      const base = (h * stride + r) * headDim;
      for (let d = 0; d < headDim; d++) {
        const x = at(base + d);
        if (!Number.isFinite(x)) throw new RangeError(`head ${h} row ${r} dim ${d} is ${x}; int8 holds finite values only`);
        const a = Math.abs(x);
        if (a > (max[h * headDim + d] as number)) max[h * headDim + d] = a;
      }
    }
  return Float32Array.from(max, (m) => m / INT8_MAX);
}

/** The int8 value of `x` under `scale`. */
export function int8Quantize(x: number, scale: number): number {
  return scale === 0 ? 0 : Math.max(-INT8_MAX, Math.min(INT8_MAX, Math.round(x / scale)));
}

/** Replaces rows [from, to) of a float32 [kvHeads, stride, headDim] tensor with their int8 round trip, in place. */
export function int8RoundTrip(x: Float32Array, kvHeads: number, stride: number, headDim: number, from: number, to: number): void {
  const scales = int8Scales((i) => x[i] as number, kvHeads, stride, headDim, from, to);
  for (let h = 0; h < kvHeads; h++)
    for (let r = from; r < to; r++) {
      const base = (h * stride + r) * headDim;
      for (let d = 0; d < headDim; d++) {
        const s = scales[h * headDim + d] as number;
        x[base + d] = int8Quantize(x[base + d] as number, s) * s;
      }
    }
}
