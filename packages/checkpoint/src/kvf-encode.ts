/**
 * Streaming KVF encoder: yields a segment as chunks (header, then each layer's K and V blocks,
 * then the sha256 trailer), so at most one layer's block is ever converted in memory. With the
 * f32 codec on a float32 state covering all of its rows, blocks are views of the state itself.
 */
import { createHash } from 'node:crypto';
import type { KvData, KvState } from '@kvfold/fold-core';
import { sliceRowsOf } from '@kvfold/fold-core';
import { checkpointErrors } from './errors.ts';
import { f16ArrayToF32, f32ArrayToF16 } from './half.ts';
import { quantizeInt8, readerOf } from './int8.ts';
import { assertLittleEndian, encodeHeader, type KvCodec, payloadBytesOf } from './kvf-format.ts';

export interface EncodeOptions {
  readonly codec: KvCodec;
  /** First row of the state to store. Default 0. */
  readonly from?: number;
  /** End of the row range (exclusive). Default `state.length`. */
  readonly to?: number;
}

/** Bytes a segment of `rows` rows will take, header and trailer included. */
export function segmentBytes(state: Pick<KvState, 'layout'>, codec: KvCodec, rows: number): number {
  return 80 + payloadBytesOf({ codec, ...state.layout }, rows) + 32;
}

/** Encodes rows [from, to) of a state as a KVF segment, chunk by chunk. */
export async function* encodeSegment(state: KvState, options: EncodeOptions): AsyncGenerator<Uint8Array> {
  assertLittleEndian();
  const { layout } = state;
  const from = options.from ?? 0;
  const to = options.to ?? state.length;
  if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= state.length)) {
    throw checkpointErrors.badState(`row range [${from}, ${to}) is outside a state of ${state.length} rows`);
  }
  const rows = to - from;
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
      rowFrom: from,
      rowTo: to,
      nextPosition: state.nextPosition,
      tokensSeen: state.tokensSeen,
      payloadBytes: payloadBytesOf({ codec: options.codec, ...layout }, rows),
    }),
  );
  for (let l = 0; l < layout.layers; l++) {
    const layer = state.layers[l];
    if (!layer) throw checkpointErrors.badState(`state has ${state.layers.length} layers, its layout says ${layout.layers}`);
    for (const [kind, data] of [
      ['K', layer.key],
      ['V', layer.value],
    ] as const) {
      const part =
        from === 0 && to === state.length
          ? data
          : sliceRowsOf(data, layout.dtype, layout.kvHeads, state.length, layout.headDim, from, to); // [kvHeads, rows, headDim]
      for (const block of encodeBlock(part, options.codec, layout.kvHeads, rows, layout.headDim, `layer ${l} ${kind}`)) {
        yield emit(block);
      }
    }
  }
  yield new Uint8Array(hash.digest());
}

/** One K or V tensor [kvHeads, rows, headDim] in the codec's bytes (int8: scales then values). */
function encodeBlock(
  data: KvData,
  codec: KvCodec,
  kvHeads: number,
  rows: number,
  headDim: number,
  what: string,
): Uint8Array[] {
  if (codec === 'f32') {
    const values = data instanceof Float32Array ? data : f16ArrayToF32(data);
    return [bytesOf(values)];
  }
  if (codec === 'f16') {
    const bits = data instanceof Uint16Array ? data : f32ArrayToF16(data);
    return [bytesOf(bits)];
  }
  const { scales, values } = quantizeInt8(readerOf(data), kvHeads, rows, headDim, what);
  return [bytesOf(scales), bytesOf(values)];
}

function bytesOf(a: Float32Array | Uint16Array | Int8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
