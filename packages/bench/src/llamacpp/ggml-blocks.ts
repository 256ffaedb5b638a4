/**
 * ggml's block formats for the weights we hand llama.cpp, written from ggml's reference
 * quantizers (quantize_row_q8_0_ref, quantize_row_q4_0_ref). A row is cut into blocks of 32
 * values; each block is stored as:
 *
 *   Q8_0  34 bytes: float16 d, then 32 int8 codes q;        x ≈ q · d,        d = max|x| / 127
 *   Q4_0  18 bytes: float16 d, then 16 bytes of 4-bit codes; x ≈ (q - 8) · d,  d = m / -8
 *
 * where m is the block's element of largest magnitude, sign kept. Q4_0 packs element j in the low
 * nibble and element j + 16 in the high nibble of byte j. Codes are taken with the float32 scale;
 * the scale is then stored as float16, as ggml does.
 */
import { float16Bits } from '@kvfold/fold-core';

export type GgmlType = 'F32' | 'Q8_0' | 'Q4_0';

/** ggml_type numbers (ggml.h). */
export const GGML_TYPE_IDS: Readonly<Record<GgmlType, number>> = { F32: 0, Q4_0: 2, Q8_0: 8 };

/** Values one block holds (QK8_0 = QK4_0 = 32). */
export const BLOCK_VALUES = 32;

/** Bytes one block takes: a float16 scale and its codes. */
export const BLOCK_BYTES: Readonly<Record<Exclude<GgmlType, 'F32'>, number>> = { Q8_0: 2 + BLOCK_VALUES, Q4_0: 2 + BLOCK_VALUES / 2 };

/** Bytes `count` values take at `type` (a quantized count must be whole blocks). */
export function ggmlBytes(type: GgmlType, count: number): number {
  if (type === 'F32') return count * 4;
  if (count % BLOCK_VALUES !== 0) throw new RangeError(`${count} values are not whole ${type} blocks of ${BLOCK_VALUES}`);
  return (count / BLOCK_VALUES) * BLOCK_BYTES[type];
}

/** C's roundf: halves away from zero (Math.round takes them up). */
const roundf = (x: number) => (x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5));

/** Encodes `src[from, from + blocks * 32)` as Q8_0 blocks into `out` at byte `at`. */
export function encodeQ8_0(src: Float32Array, from: number, blocks: number, out: Uint8Array, at: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0; b < blocks; b++) {
    const base = from + b * BLOCK_VALUES;
    let amax = 0;
    for (let j = 0; j < BLOCK_VALUES; j++) amax = Math.max(amax, Math.abs(src[base + j] as number));
    const d = Math.fround(amax / 127);
    const id = d ? Math.fround(1 / d) : 0;
    const o = at + b * BLOCK_BYTES.Q8_0;
    view.setUint16(o, float16Bits(d), true);
    for (let j = 0; j < BLOCK_VALUES; j++) view.setInt8(o + 2 + j, roundf(Math.fround((src[base + j] as number) * id)));
  }
}

/** Encodes `src[from, from + blocks * 32)` as Q4_0 blocks into `out` at byte `at`. */
export function encodeQ4_0(src: Float32Array, from: number, blocks: number, out: Uint8Array, at: number): void {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const half = BLOCK_VALUES / 2;
  for (let b = 0; b < blocks; b++) {
    const base = from + b * BLOCK_VALUES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < BLOCK_VALUES; j++) {
      const v = src[base + j] as number;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d ? Math.fround(1 / d) : 0;
    const o = at + b * BLOCK_BYTES.Q4_0;
    view.setUint16(o, float16Bits(d), true);
    // (int8_t)(x + 8.5f) truncates; x · id lies in [-8, 8], so the sum is never negative.
    const code = (v: number) => Math.min(15, Math.trunc(Math.fround(Math.fround(v * id) + 8.5)));
    for (let j = 0; j < half; j++) out[o + 2 + j] = code(src[base + j] as number) | (code(src[base + half + j] as number) << 4);
  }
}
