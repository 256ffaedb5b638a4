/**
 * A GGUF v3 file writer (ggml's docs/gguf.md), little-endian:
 *
 *   "GGUF"  u32 version 3  u64 tensor_count  u64 metadata_kv_count
 *   metadata_kv[]   string key, u32 value type, value   (string = u64 length + UTF-8 bytes;
 *                                                          array = u32 element type, u64 count, elements)
 *   tensor_info[]   string name, u32 n_dims, u64 dims[n_dims] (innermost first), u32 ggml type,
 *                   u64 offset (from the start of the data section, a multiple of the alignment)
 *   zero padding to the alignment, then each tensor's data, each padded to the alignment
 *
 * Every tensor's size is known from its dims and type before any data is read, so the header is
 * written first and the tensors are then streamed one at a time: memory holds the header and one
 * tensor's float32 values (given by the caller) plus a fixed encoding buffer.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { BLOCK_BYTES, BLOCK_VALUES, encodeQ4_0, encodeQ8_0, GGML_TYPE_IDS, type GgmlType, ggmlBytes } from './ggml-blocks.ts';

/** The alignment llama.cpp assumes when `general.alignment` is absent; we write it too. */
export const GGUF_ALIGNMENT = 32;
const GGUF_MAGIC = 'GGUF';
const GGUF_VERSION = 3;

/** gguf_metadata_value_type numbers of the value types written here. */
export const GGUF_VALUE_TYPES = { uint32: 4, int32: 5, float32: 6, bool: 7, string: 8, array: 9 } as const;

export type GgufValue =
  | { readonly type: 'uint32' | 'int32' | 'float32'; readonly value: number }
  | { readonly type: 'bool'; readonly value: boolean }
  | { readonly type: 'string'; readonly value: string }
  | { readonly type: 'array'; readonly element: 'string'; readonly value: readonly string[] }
  | { readonly type: 'array'; readonly element: 'int32' | 'float32'; readonly value: ArrayLike<number> };

type Scalar = Exclude<GgufValue['type'], 'array'>;

/** How one value of each scalar type is written. */
const WRITE: Readonly<Record<Scalar, (w: ByteWriter, x: unknown) => void>> = {
  uint32: (w, x) => w.u32(x as number),
  int32: (w, x) => w.i32(x as number),
  float32: (w, x) => w.f32(x as number),
  bool: (w, x) => w.u8(x ? 1 : 0),
  string: (w, x) => w.string(x as string),
};

export interface GgufTensor {
  readonly name: string;
  /** ggml order, innermost first: a row-major [rows, cols] matrix is [cols, rows]. */
  readonly dims: readonly number[];
  readonly type: GgmlType;
  /** The tensor's float32 values in row-major order, read when it is written (valid until the next call). */
  readonly values: () => Float32Array;
}

export interface WrittenGguf {
  readonly bytes: number;
  /** Where the data section starts (the header's padded size). */
  readonly dataOffset: number;
}

/** Blocks encoded per write: about 1 MiB of codes, whatever the tensor's size. */
const ENCODE_BLOCKS = 1 << 15;

export const alignUp = (n: number, alignment = GGUF_ALIGNMENT) => Math.ceil(n / alignment) * alignment;

/** Writes a GGUF v3 file at `path` (replaced if it exists). */
export function writeGguf(path: string, metadata: ReadonlyArray<readonly [string, GgufValue]>, tensors: readonly GgufTensor[]): WrittenGguf {
  const header = new ByteWriter();
  header.bytes(Buffer.from(GGUF_MAGIC, 'ascii'));
  header.u32(GGUF_VERSION);
  header.u64(tensors.length);
  header.u64(metadata.length);
  for (const [key, value] of metadata) {
    header.string(key);
    writeValue(header, value);
  }
  let offset = 0;
  for (const t of tensors) {
    if (Buffer.byteLength(t.name) > 64) throw new RangeError(`GGUF tensor name ${t.name} is longer than 64 bytes`);
    header.string(t.name);
    header.u32(t.dims.length);
    for (const d of t.dims) header.u64(d);
    header.u32(GGML_TYPE_IDS[t.type]);
    header.u64(offset);
    offset = alignUp(offset + ggmlBytes(t.type, count(t)));
  }
  const dataOffset = alignUp(header.length);
  const fd = openSync(path, 'w');
  try {
    let at = writeAll(fd, header.result(), 0);
    at = pad(fd, at, dataOffset);
    const scratch = new Uint8Array(ENCODE_BLOCKS * BLOCK_BYTES.Q8_0);
    for (const t of tensors) {
      const n = count(t);
      const values = t.values();
      if (values.length < n) throw new RangeError(`tensor ${t.name} gave ${values.length} values; its dims [${t.dims}] need ${n}`);
      if (t.type === 'F32') {
        at = writeAll(fd, new Uint8Array(values.buffer, values.byteOffset, n * 4), at);
      } else {
        const encode = t.type === 'Q8_0' ? encodeQ8_0 : encodeQ4_0;
        const blocks = n / BLOCK_VALUES;
        for (let b = 0; b < blocks; b += ENCODE_BLOCKS) {
          const take = Math.min(ENCODE_BLOCKS, blocks - b);
          encode(values, b * BLOCK_VALUES, take, scratch, 0);
          at = writeAll(fd, scratch.subarray(0, take * BLOCK_BYTES[t.type]), at);
        }
      }
      at = pad(fd, at, alignUp(at - dataOffset) + dataOffset);
    }
    return { bytes: at, dataOffset };
  } finally {
    closeSync(fd);
  }
}

const count = (t: GgufTensor) => t.dims.reduce((a, b) => a * b, 1);

function writeAll(fd: number, bytes: Uint8Array, at: number): number {
  for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done, at + done);
  return at + bytes.length;
}

function pad(fd: number, at: number, to: number): number {
  return to > at ? writeAll(fd, new Uint8Array(to - at), at) : at;
}

function writeValue(w: ByteWriter, v: GgufValue): void {
  if (v.type !== 'array') {
    w.u32(GGUF_VALUE_TYPES[v.type]);
    WRITE[v.type](w, v.value);
    return;
  }
  w.u32(GGUF_VALUE_TYPES.array);
  w.u32(GGUF_VALUE_TYPES[v.element]);
  w.u64(v.value.length);
  for (let i = 0; i < v.value.length; i++) WRITE[v.element](w, v.value[i]);
}

/** A growing little-endian byte buffer for the header (metadata and tensor infos). */
class ByteWriter {
  #buf = Buffer.alloc(1 << 16);
  length = 0;

  /** Makes room for `n` bytes and returns where they go (it may replace #buf: read #buf after it). */
  #room(n: number): number {
    if (this.length + n > this.#buf.length) {
      const next = Buffer.alloc(Math.max(this.#buf.length * 2, this.length + n));
      this.#buf.copy(next, 0, 0, this.length);
      this.#buf = next;
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  #put(n: number, write: (buf: Buffer, at: number) => unknown): void {
    const at = this.#room(n);
    write(this.#buf, at);
  }
  u8 = (v: number) => this.#put(1, (b, at) => b.writeUInt8(v, at));
  u32 = (v: number) => this.#put(4, (b, at) => b.writeUInt32LE(v, at));
  i32 = (v: number) => this.#put(4, (b, at) => b.writeInt32LE(v, at));
  f32 = (v: number) => this.#put(4, (b, at) => b.writeFloatLE(v, at));
  u64 = (v: number) => this.#put(8, (b, at) => b.writeBigUInt64LE(BigInt(v), at));
  bytes = (v: Uint8Array) => this.#put(v.length, (b, at) => b.set(v, at));
  string(s: string) {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.bytes(b);
  }
  result(): Uint8Array {
    return this.#buf.subarray(0, this.length);
  }
}
