/**
 * The KVF segment format's header: constants, types and its fixed 80-byte little-endian layout.
 * FORMAT.md documents the format byte by byte; this file is its single source in code.
 */
import { endianness } from 'node:os';
import type { KvDtype } from '@kvfold/fold-core';
import { checkpointErrors } from './errors.ts';

/** 'KVF1' */
export const KVF_MAGIC = new Uint8Array([0x4b, 0x56, 0x46, 0x31]);
/** The newest segment format this build writes and reads. */
export const KVF_FORMAT_VERSION = 1;
/** Bytes of the version-1 header, magic included. */
export const KVF_HEADER_BYTES = 80;
/** Bytes of the sha256 trailer. */
export const KVF_TRAILER_BYTES = 32;

/**
 * How K/V values are stored: f32 (lossless for float32), f16 (lossless for float16), int8 (for a
 * float32 or float16 cache, per-channel scales over the segment; for an int8 cache, its own codes
 * and row scales, losslessly: the only codec an int8 cache is stored with).
 */
export type KvCodec = 'f32' | 'f16' | 'int8';
export const KV_CODECS: readonly KvCodec[] = ['f32', 'f16', 'int8'];

const CODEC_IDS: Record<KvCodec, number> = { f32: 0, f16: 1, int8: 2 };
const DTYPE_IDS: Record<KvDtype, number> = { float32: 0, float16: 1, int8: 2 };

/** What a segment's header says. */
export interface SegmentHeader {
  readonly version: number;
  readonly codec: KvCodec;
  /** dtype of the state the rows came from, and the dtype they decode to. */
  readonly dtype: KvDtype;
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly maxPositions: number;
  /** Row range [rowFrom, rowTo) of the state this segment holds. */
  readonly rowFrom: number;
  readonly rowTo: number;
  /** The state's `nextPosition` and `tokensSeen` once these rows are in. */
  readonly nextPosition: number;
  readonly tokensSeen: number;
  /** Bytes of all layer blocks between header and trailer. */
  readonly payloadBytes: number;
}

/** Bytes of one K or V block of one layer. */
export function blockBytes(h: Pick<SegmentHeader, 'codec' | 'dtype' | 'kvHeads' | 'headDim'>, rows: number): number {
  const n = h.kvHeads * rows * h.headDim;
  if (h.codec === 'f32') return n * 4;
  if (h.codec === 'f16') return n * 2;
  if (h.dtype === 'int8') return h.kvHeads * rows * 4 + n; // an int8 cache's f32 row scales [kvHeads, rows], then its codes
  return h.kvHeads * h.headDim * 4 + n; // f32 channel scales [kvHeads, headDim], then int8 values
}

/** Payload bytes of a segment: every layer's K and V blocks. */
export function payloadBytesOf(h: Pick<SegmentHeader, 'codec' | 'dtype' | 'kvHeads' | 'headDim' | 'layers'>, rows: number): number {
  return 2 * h.layers * blockBytes(h, rows);
}

/** Typed arrays are written as their memory; the format is little-endian. */
export function assertLittleEndian(): void {
  if (endianness() !== 'LE') {
    throw checkpointErrors.badState('KVF segments are little-endian and this host is big-endian; not supported');
  }
}

/** Serialises a header into its 80 bytes. */
export function encodeHeader(h: Omit<SegmentHeader, 'version'>): Uint8Array {
  const out = new Uint8Array(KVF_HEADER_BYTES);
  const v = new DataView(out.buffer);
  out.set(KVF_MAGIC, 0);
  v.setUint16(4, KVF_FORMAT_VERSION, true);
  v.setUint16(6, KVF_HEADER_BYTES, true);
  v.setUint8(8, CODEC_IDS[h.codec]);
  v.setUint8(9, DTYPE_IDS[h.dtype]);
  v.setUint16(10, 0, true); // flags
  v.setUint32(12, h.layers, true);
  v.setUint32(16, h.kvHeads, true);
  v.setUint32(20, h.headDim, true);
  v.setUint32(24, h.maxPositions, true);
  v.setUint32(28, 0, true); // reserved
  v.setBigUint64(32, BigInt(h.rowFrom), true);
  v.setBigUint64(40, BigInt(h.rowTo), true);
  v.setBigUint64(48, BigInt(h.nextPosition), true);
  v.setBigUint64(56, BigInt(h.tokensSeen), true);
  v.setBigUint64(64, BigInt(h.payloadBytes), true);
  v.setBigUint64(72, 0n, true); // reserved
  return out;
}

/** Reads the fixed part of a header (first 8 bytes): version and header length. */
export function readPreamble(name: string, bytes: Uint8Array): { version: number; headerBytes: number } {
  for (let i = 0; i < 4; i++) {
    if (bytes[i] !== KVF_MAGIC[i]) throw checkpointErrors.corrupt(name, 'bad magic (not a KVF segment)');
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint16(4, true);
  const headerBytes = v.getUint16(6, true);
  if (version > KVF_FORMAT_VERSION) throw checkpointErrors.newerVersion(name, version, KVF_FORMAT_VERSION);
  if (version === 0 || headerBytes < KVF_HEADER_BYTES) {
    throw checkpointErrors.corrupt(name, `impossible header (version ${version}, ${headerBytes} header bytes)`);
  }
  return { version, headerBytes };
}

/** Parses a whole header (at least 80 bytes, preamble already checked). */
export function decodeHeader(name: string, bytes: Uint8Array): SegmentHeader {
  const { version } = readPreamble(name, bytes);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const codec = KV_CODECS[v.getUint8(8)];
  const dtype = (['float32', 'float16', 'int8'] as const)[v.getUint8(9)];
  if (!codec || !dtype) throw checkpointErrors.corrupt(name, `unknown codec ${v.getUint8(8)} or dtype ${v.getUint8(9)}`);
  const big = (at: number) => {
    const n = v.getBigUint64(at, true);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw checkpointErrors.corrupt(name, `header field at byte ${at} is out of range`);
    return Number(n);
  };
  const h: SegmentHeader = {
    version,
    codec,
    dtype,
    layers: v.getUint32(12, true),
    kvHeads: v.getUint32(16, true),
    headDim: v.getUint32(20, true),
    maxPositions: v.getUint32(24, true),
    rowFrom: big(32),
    rowTo: big(40),
    nextPosition: big(48),
    tokensSeen: big(56),
    payloadBytes: big(64),
  };
  if (h.rowTo < h.rowFrom) throw checkpointErrors.corrupt(name, `row range [${h.rowFrom}, ${h.rowTo}) is reversed`);
  if (h.dtype === 'int8' && h.codec !== 'int8') throw checkpointErrors.corrupt(name, `an int8 cache's rows stored as ${h.codec}`);
  if (h.payloadBytes !== payloadBytesOf(h, h.rowTo - h.rowFrom)) {
    throw checkpointErrors.corrupt(name, `payload length ${h.payloadBytes} does not match its shape`);
  }
  return h;
}
