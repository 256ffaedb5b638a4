/**
 * Symmetric int8 quantization of KV rows, two ways:
 *
 *   per row      what an int8 cache holds: each head's row [headDim] gets its own scale as it is
 *                appended (the fold graph computes it for new rows; `int8QuantizeRow` here for rows
 *                the host rewrites, such as StreamingLLM's re-rotated keys), so no row already held
 *                ever changes;
 *   per channel  the checkpoint codec `int8` of float32/float16 caches: one scale per (head, dim)
 *                channel over a segment's rows.
 *
 * Either way scale = max |x| / 127, q = clamp(round(x / scale), -127, 127), x' = q * scale, so
 * every value comes back within scale / 2. For each (head, dim) channel of one K or V tensor, over a range of rows:
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

/**
 * Quantizes one row of `headDim` values, `src[from ..]`, into `dst[to ..]` with one scale, and
 * returns the scale. Throws a RangeError on a non-finite value.
 */
export function int8QuantizeRow(src: ArrayLike<number>, from: number, dst: Int8Array, to: number, headDim: number): number {
  let max = 0;
  for (let d = 0; d < headDim; d++) {
    const x = src[from + d] as number;
    if (!Number.isFinite(x)) throw new RangeError(`element ${d} of the row is ${x}; int8 holds finite values only`);
    max = Math.max(max, Math.abs(x));
  }
  const scale = Math.fround(max / INT8_MAX);
  for (let d = 0; d < headDim; d++) dst[to + d] = int8Quantize(src[from + d] as number, scale);
  return scale;
}
