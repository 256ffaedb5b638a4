/**
 * RoPE, the project's one implementation: the inverse frequencies a model's graph and the policies
 * use, and the rotation of cached keys, for policies that move rows to new positions.
 *
 * Keys in optimum-style caches are stored already rotated (HF "rotate_half" layout: dims j and
 * j + headDim/2 form pair j, turned by angle position * invFreq[j]). Rotations compose, so a key
 * rotated for position p becomes the key for position p + delta when turned by delta * invFreq[j].
 */

/*
 * Inverse frequencies, plain or with Llama 3.1's frequency-dependent scaling (`rope_scaling`
 * with `rope_type: "llama3"`), following transformers' `_compute_llama3_parameters`:
 *
 *   inv[j]   = theta^(-2j/D), j in [0, D/2), wavelength 2π / inv[j]
 *   wavelength <  original / high_freq_factor          inv[j]            (high frequencies kept)
 *   wavelength >  original / low_freq_factor           inv[j] / factor   (low frequencies slowed)
 *   otherwise, with s = (original / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor):
 *                                                     (1 - s) · inv[j] / factor + s · inv[j]
 *
 * (`original` is `original_max_position_embeddings`.) The llama3 rule scales no attention logits:
 * its attention factor is 1. Values are computed in float64; a graph rounds them once to float32.
 */

/** Llama 3.1's RoPE scaling, as `config.json` spells it. */
export interface Llama3RopeScaling {
  readonly rope_type: 'llama3';
  readonly factor: number;
  readonly low_freq_factor: number;
  readonly high_freq_factor: number;
  readonly original_max_position_embeddings: number;
}

/** The RoPE scalings implemented (none is `null`). */
export type RopeScaling = Llama3RopeScaling;

/** theta^(-2j/D) for j in [0, D/2), scaled by `scaling` when given, in float64. */
export function ropeFrequencies(theta: number, headDim: number, scaling: RopeScaling | null = null): Float64Array {
  const inv = Float64Array.from({ length: headDim / 2 }, (_, j) => theta ** ((-2 * j) / headDim));
  if (!scaling) return inv;
  const { factor, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: original } = scaling;
  const lowFreqWavelength = original / low;
  const highFreqWavelength = original / high;
  return inv.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < highFreqWavelength) return f;
    if (wavelength > lowFreqWavelength) return f / factor;
    const smooth = (original / wavelength - low) / (high - low);
    return ((1 - smooth) * f) / factor + smooth * f;
  });
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
