/**
 * Conversions between float32 and the two 16-bit float formats checkpoints use: IEEE float16
 * (binary16) and bfloat16 (float32's upper half). Both are held as raw bits in Uint16Arrays.
 */

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

/** The binary16 bits nearest to `x` (round half to even); beyond ±65504 gives ±Infinity, NaN stays NaN. */
export function float16Bits(x: number): number {
  scratch[0] = x;
  const b = scratchBits[0] as number;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 -> 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // A binary16 subnormal (or zero): m * 2^-24, m = round(significand * 2^(exp - 126)).
    if (e < -10) return sign;
    const significand = mant | 0x800000;
    const shift = 14 - e;
    const halfway = 1 << (shift - 1);
    const rest = significand & ((1 << shift) - 1);
    let h = significand >>> shift;
    if (rest > halfway || (rest === halfway && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // a carry may round up to Infinity, as it should
  return sign | h;
}

let halfTable: Float32Array | null = null;

/** Every binary16 bit pattern's float32 value (256 KiB, built once). */
function float16Table(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >>> 10) & 0x1f;
    const mant = h & 0x3ff;
    if (exp === 0) t[h] = sign * mant * 2 ** -24;
    else if (exp === 0x1f) t[h] = mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else t[h] = sign * (1 + mant / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}

/** The float32 value of binary16 bits. */
export function float16Value(bits: number): number {
  return float16Table()[bits & 0xffff] as number;
}

/** Decodes binary16 bits into `out` (same length, a new array by default). */
export function float16ToFloat32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const t = float16Table();
  for (let i = 0; i < src.length; i++) out[i] = t[src[i] as number] as number;
  return out;
}

/** Encodes float32 values as binary16 bits (round half to even) into `out` (same length, a new array by default). */
export function float32ToFloat16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = float16Bits(src[i] as number);
  return out;
}

/** Decodes bfloat16 bits into `out` (same length): a bfloat16 is a float32's upper 16 bits. */
export function bfloat16ToFloat32(src: Uint16Array, out: Float32Array): void {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = (src[i] as number) << 16;
}

/** The bfloat16 bits nearest to `x` (round half to even; NaN stays NaN). */
export function bfloat16Bits(x: number): number {
  scratch[0] = x;
  const b = scratchBits[0] as number;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** `x` rounded to the nearest binary16 value, as a number. */
export function roundToFloat16(x: number): number {
  return float16Value(float16Bits(x));
}

/** `x` rounded to the nearest bfloat16 value, as a number. */
export function roundToBfloat16(x: number): number {
  scratchBits[0] = bfloat16Bits(x) << 16;
  return scratch[0] as number;
}
