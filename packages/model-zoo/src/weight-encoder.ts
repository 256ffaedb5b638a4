/**
 * A weight's initializer bytes: float32 or float16, as given or transposed ([rows, cols] ->
 * [cols, rows], a Linear's [out, in] as MatMul's [in, out]). When the graph builder streams, each
 * weight's bytes are written out before the next is encoded, so the encoder reuses one scratch
 * buffer per dtype: memory is the largest weight's, not the sum of every weight's garbage.
 */
import { float16Bits } from '@kvfold/fold-core';
import type { WeightTensor } from './llama-spec.ts';
import { DataType } from './onnx-graph.ts';

/** Tile edge of the blocked transpose: a 64 x 64 float32 tile (16 KiB) stays in L1 both ways. */
const TILE = 64;

export interface EncodedWeight {
  readonly dataType: number;
  readonly dims: readonly number[];
  /** Valid until the next `encode` when the encoder reuses its scratch. */
  readonly bytes: Uint8Array;
}

export class WeightEncoder {
  private f32: Float32Array = new Float32Array(0);
  private f16: Uint16Array = new Uint16Array(0);

  constructor(
    private readonly dtype: 'float32' | 'float16',
    /** Reuse scratch buffers across weights (only when each result is consumed before the next encode). */
    private readonly reuse: boolean,
  ) {}

  encode(name: string, t: WeightTensor, transposed: boolean): EncodedWeight {
    const [rows, cols] = t.shape as [number, number];
    const dims = transposed ? [cols, rows] : t.shape;
    const n = t.data.length;
    if (this.dtype === 'float32') {
      if (!transposed) return { dataType: DataType.FLOAT, dims, bytes: bytesOf(t.data) };
      const out = this.floats(n);
      forEachTransposed(rows, cols, (to, from) => {
        out[to] = t.data[from] as number;
      });
      return { dataType: DataType.FLOAT, dims, bytes: bytesOf(out) };
    }
    const out = this.halves(n);
    const put = (to: number, from: number) => {
      const x = t.data[from] as number;
      const bits = float16Bits(x);
      if ((bits & 0x7c00) === 0x7c00 && Number.isFinite(x)) {
        throw new RangeError(`weight ${name} holds ${x} at element ${from}, beyond float16's range (±65504): store the weights as float32`);
      }
      out[to] = bits;
    };
    if (transposed) forEachTransposed(rows, cols, put);
    else for (let i = 0; i < n; i++) put(i, i);
    return { dataType: DataType.FLOAT16, dims, bytes: bytesOf(out) };
  }

  private floats(n: number): Float32Array {
    if (!this.reuse) return new Float32Array(n);
    if (this.f32.length < n) this.f32 = new Float32Array(n);
    return this.f32.subarray(0, n);
  }

  private halves(n: number): Uint16Array {
    if (!this.reuse) return new Uint16Array(n);
    if (this.f16.length < n) this.f16 = new Uint16Array(n);
    return this.f16.subarray(0, n);
  }
}

/** Calls `move(to, from)` for every element of a [rows, cols] -> [cols, rows] transpose, tile by tile. */
function forEachTransposed(rows: number, cols: number, move: (to: number, from: number) => void): void {
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) {
        const base = r * cols;
        for (let col = c0; col < c1; col++) move(col * rows + r, base + col);
      }
    }
  }
}

function bytesOf(a: Float32Array | Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
