/**
 * Streaming KVF encoder: yields a segment as chunks (header, then each layer's K and V blocks,
 * then the sha256 trailer), so at most one layer's block is ever converted in memory. With the
 * f32 codec on float32 rows, blocks are views of the rows themselves.
 */
import { createHash } from 'node:crypto';
import type { KvLayout, KvPositions, KvRows } from '@kvfold/fold-core';
import { assertRowsFit, float16ToFloat32, float32ToFloat16 } from '@kvfold/fold-core';
import { checkpointErrors } from './errors.ts';
import { quantizeInt8, readerOf } from './int8.ts';
import { assertLittleEndian, encodeHeader, type KvCodec, payloadBytesOf } from './kvf-format.ts';

/** Rows of a cache to store: rows [rowFrom, rowFrom + rows.rows), and the positions once they are in. */
export interface KvSegment extends KvPositions {
  readonly layout: KvLayout;
  readonly rowFrom: number;
  readonly rows: KvRows;
}

export interface EncodeOptions {
  readonly codec: KvCodec;
}

/** Bytes a segment of `rows` rows will take, header and trailer included. */
export function segmentBytes(layout: KvLayout, codec: KvCodec, rows: number): number {
  return 80 + payloadBytesOf({ codec, ...layout }, rows) + 32;
}

/** Encodes a segment, chunk by chunk. */
export async function* encodeSegment(segment: KvSegment, options: EncodeOptions): AsyncGenerator<Uint8Array> {
  assertLittleEndian();
  const { layout, rows, rowFrom } = segment;
  try {
    assertRowsFit(layout, rows);
  } catch (err) {
    throw checkpointErrors.badState((err as Error).message);
  }
  if (!Number.isInteger(rowFrom) || rowFrom < 0) throw checkpointErrors.badState(`a segment cannot start at row ${rowFrom}`);
  if (layout.dtype === 'int8' && options.codec !== 'int8') {
    throw checkpointErrors.badState(`an int8 cache is checkpointed with the int8 codec (its own codes and scales, losslessly), not ${options.codec}`);
  }
  const n = rows.rows;
  const hash = createHash('sha256');
  const emit = (bytes: Uint8Array) => {
    hash.update(bytes);
    return bytes;
  };
  yield emit(
    encodeHeader({
      codec: options.codec,
      dtype: layout.dtype,
      layers: layout.layers,
      kvHeads: layout.kvHeads,
      headDim: layout.headDim,
      maxPositions: layout.maxPositions,
      rowFrom,
      rowTo: rowFrom + n,
      nextPosition: segment.nextPosition,
      tokensSeen: segment.tokensSeen,
      payloadBytes: payloadBytesOf({ codec: options.codec, ...layout }, n),
    }),
  );
  for (const [l, layer] of rows.layers.entries()) {
    for (const [kind, data, scales] of [
      ['K', layer.key, layer.keyScales],
      ['V', layer.value, layer.valueScales],
    ] as const) {
      // An int8 cache's rows are stored as they are held: their row scales, then their codes.
      const blocks = data instanceof Int8Array ? [bytesOf(scales as Float32Array), bytesOf(data)] : encodeBlock(data, options.codec, layout.kvHeads, n, layout.headDim, `layer ${l} ${kind}`);
      for (const block of blocks) yield emit(block);
    }
  }
  yield new Uint8Array(hash.digest());
}

/** One K or V tensor [kvHeads, rows, headDim] of a float32 or float16 cache in the codec's bytes (int8: scales then values). */
function encodeBlock(data: Float32Array | Uint16Array, codec: KvCodec, kvHeads: number, rows: number, headDim: number, what: string): Uint8Array[] {
  if (codec === 'f32') {
    const values = data instanceof Float32Array ? data : float16ToFloat32(data);
    return [bytesOf(values)];
  }
  if (codec === 'f16') {
    const bits = data instanceof Uint16Array ? data : float32ToFloat16(data);
    return [bytesOf(bits)];
  }
  const { scales, values } = quantizeInt8(readerOf(data), kvHeads, rows, headDim, what);
  return [bytesOf(scales), bytesOf(values)];
}

function bytesOf(a: Float32Array | Uint16Array | Int8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
