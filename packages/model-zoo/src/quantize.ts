/**
 * Block-wise symmetric weight quantization for onnxruntime's `MatMulNBits` and
 * `GatherBlockQuantized` (com.microsoft), the published scheme of llama.cpp's Q4_0 / Q8_0 and of
 * onnxruntime-genai's model builder:
 *
 *   A weight [N, K] (a Linear's [out, in], or the embedding's [vocab, hidden]) is cut along K into
 *   blocks of `blockSize`. Each block keeps one float32 scale d = m / -2^(bits-1), where m is the
 *   block's element of largest magnitude, sign kept (so m is stored exactly, at the code 0). An
 *   element x is stored as the code q = clamp(round(x / d) + 2^(bits-1), 0, 2^bits - 1) and read
 *   back as (q - 2^(bits-1)) · d: within d/2 of x, or within d where the code range ends (an
 *   element near -m, one code short of the other side). A block of zeros has d = 0.
 *
 *   packed  uint8   [N, kBlocks, blockSize · bits / 8]   codes low-first along K: two 4-bit codes a
 *                                                        byte (the even element in the low nibble),
 *                                                        or one 8-bit code; a last partial block is
 *                                                        padded with zero codes' value (x = 0)
 *   scales  float32 [N, kBlocks]
 *
 * The zero point is implicit (2^(bits-1): 8 or 128), as both ops assume when none is given for
 * 4 bits; 8-bit gathers are given it explicitly (`zeroPoints`).
 */
import type { WeightTensor } from './llama-spec.ts';

export type QuantBits = 4 | 8;

/** Block size onnxruntime-genai's builder writes by default: one scale per 32 weights. */
export const DEFAULT_BLOCK_SIZE = 32;

export interface QuantizedWeight {
  /** [N, kBlocks, blobBytes]; valid until the next `quantize` when the quantizer reuses its scratch. */
  readonly packed: Uint8Array;
  /** [N, kBlocks] */
  readonly scales: Float32Array;
  readonly n: number;
  readonly k: number;
  readonly kBlocks: number;
  /** Bytes of one block's codes. */
  readonly blobBytes: number;
}

export class BlockQuantizer {
  #packed = new Uint8Array(0);
  #scales = new Float32Array(0);

  constructor(
    readonly bits: QuantBits,
    readonly blockSize: number,
    /** Reuse scratch buffers across weights (only when each result is consumed before the next). */
    private readonly reuse: boolean,
  ) {
    if (!Number.isInteger(blockSize) || blockSize < 16 || (blockSize & (blockSize - 1)) !== 0) {
      throw new RangeError(`block size must be a power of two >= 16, got ${blockSize}`);
    }
  }

  /** The zero point both ops assume: the middle code. */
  get zeroPoint(): number {
    return 1 << (this.bits - 1);
  }

  /** Quantizes a [N, K] weight named `name`; a NaN or infinite element is refused, naming the tensor. */
  quantize(name: string, t: WeightTensor): QuantizedWeight {
    if (t.shape.length !== 2) throw new RangeError(`weight ${name} has shape [${t.shape.join(', ')}]; block quantization takes a 2-D [out, in] weight`);
    const [n, k] = t.shape as [number, number];
    const { bits, blockSize } = this;
    const kBlocks = Math.ceil(k / blockSize);
    const blobBytes = (blockSize * bits) / 8;
    const packed = this.#bytes(n * kBlocks * blobBytes);
    const scales = this.#floats(n * kBlocks);
    const zp = this.zeroPoint;
    const maxCode = (1 << bits) - 1;
    const data = t.data;
    for (let row = 0; row < n; row++) {
      for (let b = 0; b < kBlocks; b++) {
        const from = row * k + b * blockSize;
        const to = row * k + Math.min(k, (b + 1) * blockSize);
        let m = 0;
        for (let i = from; i < to; i++) {
          const x = data[i] as number;
          if (!Number.isFinite(x)) throw new RangeError(`weight ${name} holds ${x} at element ${i} (row ${row}, column ${i - row * k}): it cannot be quantized`);
          if (Math.abs(x) > Math.abs(m)) m = x;
        }
        const d = m === 0 ? 0 : m / -zp;
        scales[row * kBlocks + b] = d;
        const inv = d === 0 ? 0 : 1 / d;
        const blob = (row * kBlocks + b) * blobBytes;
        for (let j = 0; j < blockSize; j++) {
          const i = from + j;
          const q = i < to ? Math.max(0, Math.min(maxCode, Math.round((data[i] as number) * inv) + zp)) : zp;
          if (bits === 8) packed[blob + j] = q;
          else if ((j & 1) === 0) packed[blob + (j >> 1)] = q;
          else packed[blob + (j >> 1)] = (packed[blob + (j >> 1)] as number) | (q << 4);
        }
      }
    }
    return { packed, scales, n, k, kBlocks, blobBytes };
  }

  #bytes(length: number): Uint8Array {
    if (!this.reuse) return new Uint8Array(length);
    if (this.#packed.length < length) this.#packed = new Uint8Array(length);
    return this.#packed.subarray(0, length);
  }

  #floats(length: number): Float32Array {
    if (!this.reuse) return new Float32Array(length);
    if (this.#scales.length < length) this.#scales = new Float32Array(length);
    return this.#scales.subarray(0, length);
  }
}

/** The values a quantized weight reads back as, [N, K] (for tests and fidelity checks). */
export function dequantize(q: QuantizedWeight, bits: QuantBits, blockSize: number): Float32Array {
  const out = new Float32Array(q.n * q.k);
  const zp = 1 << (bits - 1);
  for (let row = 0; row < q.n; row++) {
    for (let col = 0; col < q.k; col++) {
      const b = Math.floor(col / blockSize);
      const j = col % blockSize;
      const byte = q.packed[(row * q.kBlocks + b) * q.blobBytes + (bits === 8 ? j : j >> 1)] as number;
      const code = bits === 8 ? byte : (j & 1) === 0 ? byte & 0x0f : byte >> 4;
      out[row * q.k + col] = (code - zp) * (q.scales[row * q.kBlocks + b] as number);
    }
  }
  return out;
}

/**
 * What config.json says of a folder's weights: `torch_dtype` (what the arithmetic reads: float16
 * for a float16 folder, else float32) and, for int8/int4, a `quantization` section naming the op,
 * bits, block size and accuracy level, so a reader (and the folder's fingerprint) knows what it holds.
 */
export function weightConfig(dtype: 'float32' | 'float16' | 'int8' | 'int4', blockSize: number, accuracyLevel: number): Record<string, unknown> {
  if (dtype === 'float32' || dtype === 'float16') return { torch_dtype: dtype };
  return {
    torch_dtype: 'float32',
    quantization: {
      method: 'MatMulNBits',
      bits: dtype === 'int4' ? 4 : 8,
      block_size: blockSize,
      symmetric: true,
      accuracy_level: accuracyLevel,
      weights: 'every projection, the embedding (GatherBlockQuantized) and lm_head; norms and biases float32',
    },
  };
}
