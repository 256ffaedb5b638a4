/**
 * Streaming KVF decoder: reads a segment from any async byte stream, layer by layer, into the
 * state's dtype, and verifies the sha256 trailer and the exact length at the end. Any damage
 * (bad magic, newer version, truncation, trailing bytes, checksum mismatch) throws a
 * KVF_CKPT_CORRUPT / KVF_CKPT_VERSION error naming the object.
 */
import type { KvData, KvLayerRows, KvRows } from '@kvfold/fold-core';
import { allocKv, float16ToFloat32, float32ToFloat16 } from '@kvfold/fold-core';
import { ByteReader } from './byte-reader.ts';
import { checkpointErrors } from './errors.ts';
import { dequantizeInt8 } from './int8.ts';
import {
  assertLittleEndian,
  decodeHeader,
  KVF_HEADER_BYTES,
  KVF_TRAILER_BYTES,
  readPreamble,
  type SegmentHeader,
} from './kvf-format.ts';

/** A decoded, verified segment. */
export interface DecodedSegment {
  readonly header: SegmentHeader;
  /** Rows [header.rowFrom, header.rowTo), in `header.dtype`. */
  readonly rows: KvRows;
  /** Hex sha256 of everything before the trailer (the trailer's value). */
  readonly sha256: string;
  /** Total bytes read, trailer included. */
  readonly bytes: number;
}

/**
 * Decodes one segment. `name` (e.g. the object's URI and key) is used in every error message;
 * `expectedBytes` (the size a manifest recorded) is checked against the header before any
 * allocation.
 */
export async function decodeSegment(
  source: AsyncIterable<Uint8Array | string>,
  name: string,
  options: { expectedBytes?: number } = {},
): Promise<DecodedSegment> {
  assertLittleEndian();
  const reader = new ByteReader(source, name);
  try {
    const preamble = await reader.read(8);
    const { headerBytes } = readPreamble(name, preamble);
    const rest = await reader.read(headerBytes - 8);
    const headerAll = new Uint8Array(headerBytes);
    headerAll.set(preamble, 0);
    headerAll.set(rest, 8);
    const header = decodeHeader(name, headerAll.subarray(0, Math.max(KVF_HEADER_BYTES, headerBytes)));
    const declared = headerBytes + header.payloadBytes + KVF_TRAILER_BYTES;
    if (options.expectedBytes !== undefined && declared !== options.expectedBytes) {
      // Checked before allocating: a damaged header must not make us allocate its claimed size.
      throw checkpointErrors.corrupt(name, `its header declares ${declared} bytes, ${options.expectedBytes} were recorded`);
    }
    const rowCount = header.rowTo - header.rowFrom;
    const n = header.kvHeads * rowCount * header.headDim;
    const layers: KvLayerRows[] = [];
    for (let l = 0; l < header.layers; l++) {
      if (header.dtype === 'int8') {
        const [key, value] = [await readHeld(reader, header, rowCount, n), await readHeld(reader, header, rowCount, n)];
        layers.push({ key: key.codes, value: value.codes, keyScales: key.scales, valueScales: value.scales });
        continue;
      }
      const key = await readBlock(reader, header, rowCount, n);
      const value = await readBlock(reader, header, rowCount, n);
      layers.push({ key, value });
    }
    const expected = new Uint8Array(reader.hash.digest());
    const trailer = await reader.read(KVF_TRAILER_BYTES, false);
    if (await reader.hasMore()) throw checkpointErrors.corrupt(name, `bytes follow the trailer at offset ${reader.consumed}`);
    if (!Buffer.from(trailer).equals(expected)) {
      throw checkpointErrors.corrupt(
        name,
        `sha256 mismatch: trailer says ${Buffer.from(trailer).toString('hex')}, content hashes to ${Buffer.from(expected).toString('hex')}`,
      );
    }
    return {
      header,
      rows: { rows: rowCount, layers },
      sha256: Buffer.from(expected).toString('hex'),
      bytes: reader.consumed,
    };
  } finally {
    await reader.close();
  }
}

/** Reads one K or V block of an int8 cache: its row scales [kvHeads, rows] and codes [kvHeads, rows, headDim], as held. */
async function readHeld(reader: ByteReader, h: SegmentHeader, rows: number, n: number): Promise<{ scales: Float32Array; codes: Int8Array }> {
  const scales = new Float32Array(h.kvHeads * rows);
  await reader.readInto(new Uint8Array(scales.buffer));
  const codes = new Int8Array(n);
  await reader.readInto(new Uint8Array(codes.buffer));
  return { scales, codes };
}

/** Reads one K or V block of a float32 or float16 cache into a [kvHeads, rows, headDim] tensor of the header's dtype. */
async function readBlock(reader: ByteReader, h: SegmentHeader, rows: number, n: number): Promise<KvData> {
  if (h.codec === 'f32') {
    const values = new Float32Array(n);
    await reader.readInto(new Uint8Array(values.buffer));
    return h.dtype === 'float32' ? values : float32ToFloat16(values);
  }
  if (h.codec === 'f16') {
    const bits = new Uint16Array(n);
    await reader.readInto(new Uint8Array(bits.buffer));
    return h.dtype === 'float16' ? bits : float16ToFloat32(bits);
  }
  const scales = new Float32Array(h.kvHeads * h.headDim); // [kvHeads, headDim]
  await reader.readInto(new Uint8Array(scales.buffer));
  const values = new Int8Array(n); // [kvHeads, rows, headDim]
  await reader.readInto(new Uint8Array(values.buffer));
  const out = allocKv(h.dtype, n) as Float32Array | Uint16Array;
  dequantizeInt8(scales, values, h.kvHeads, rows, h.headDim, out);
  return out;
}
