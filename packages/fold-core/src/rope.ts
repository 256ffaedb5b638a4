/**
 * RoPE rotation of cached keys, for policies that move rows to new positions.
 *
 * Keys in optimum-style caches are stored already rotated (HF "rotate_half" layout: dims j and
 * j + headDim/2 form pair j, turned by angle position * invFreq[j]). Rotations compose, so a key
 * rotated for position p becomes the key for position p + delta when turned by delta * invFreq[j].
 */

/** theta^(-2j/headDim), j in [0, headDim/2): the default (unscaled) RoPE frequencies. */
export function ropeFrequencies(theta: number, headDim: number): Float64Array {
  return Float64Array.from({ length: headDim / 2 }, (_, j) => theta ** ((-2 * j) / headDim));
}

/**
 * Turns rows [from, to) of a float32 [kvHeads, rows, headDim] key tensor by `delta` positions, in place.
 */
export function rotateKeyRows(
  keys: Float32Array,
  kvHeads: number,
  rows: number,
  headDim: number,
  from: number,
  to: number,
  delta: number,
  invFreq: Float64Array,
): void {
  const half = headDim / 2;
  const cos = new Float64Array(half);
  const sin = new Float64Array(half);
  for (let j = 0; j < half; j++) {
    const angle = delta * (invFreq[j] as number);
    cos[j] = Math.cos(angle);
    sin[j] = Math.sin(angle);
  }
  for (let h = 0; h < kvHeads; h++) {
    for (let r = from; r < to; r++) {
      const base = (h * rows + r) * headDim;
      for (let j = 0; j < half; j++) {
        const x1 = keys[base + j] as number;
        const x2 = keys[base + j + half] as number;
        keys[base + j] = x1 * (cos[j] as number) - x2 * (sin[j] as number);
        keys[base + j + half] = x2 * (cos[j] as number) + x1 * (sin[j] as number);
      }
    }
  }
}
