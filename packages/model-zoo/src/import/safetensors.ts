/**
 * The safetensors format, read and written with positioned file I/O (never a whole file in memory):
 *
 *   u64 little-endian N | N bytes of JSON header | data
 *
 * The header maps each tensor name to `{ dtype, shape, data_offsets: [begin, end] }`, offsets
 * relative to the start of the data; an optional `__metadata__` maps strings to strings.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { bfloat16ToFloat32, float16ToFloat32 } from '@kvfold/fold-core';
import { ImportError } from './errors.ts';

/** Bytes per element of every safetensors dtype. */
export const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
};

/** The dtypes a weight can be read from. */
export const FLOAT_DTYPES = ['F32', 'F16', 'BF16'] as const;
export type FloatDtype = (typeof FLOAT_DTYPES)[number];

/** The safetensors library refuses headers above 100 MB; so does this reader. */
const MAX_HEADER_BYTES = 100_000_000;

/** Bytes read per call when decoding a 16-bit tensor (a multiple of every element size). */
const READ_CHUNK = 16 << 20;

/** Node's fs calls take at most 2 GiB - 1 bytes at a time. */
const MAX_IO = 1 << 30;

export interface TensorEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  /** Absolute offset of the tensor's first byte in the file. */
  readonly offset: number;
  readonly byteLength: number;
}

/** An open safetensors file: its header parsed, its tensors read on demand. */
export class SafetensorsFile {
  private fd: number | null;

  private constructor(
    readonly path: string,
    fd: number,
    readonly tensors: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {
    this.fd = fd;
  }

  /** Opens `path` and checks its header: every tensor's dtype, shape and byte range. */
  static open(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw new ImportError('KVF_IMPORT_NOT_FOUND', `cannot open ${path}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const size = fstatSync(fd).size;
      const bad = (why: string) => new ImportError('KVF_IMPORT_MALFORMED', `${path} is not a safetensors file: ${why}`);
      if (size < 8) throw bad(`it has ${size} bytes, fewer than the 8-byte header length`);
      const lengthBytes = Buffer.alloc(8);
      readFully(fd, lengthBytes, 0);
      const headerLength = Number(lengthBytes.readBigUInt64LE(0));
      if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) throw bad(`its header length ${headerLength} exceeds ${8 + headerLength > size ? `the file (${size} bytes)` : 'the 100 MB limit'}`);
      const headerBytes = Buffer.alloc(headerLength);
      readFully(fd, headerBytes, 8);
      let header: unknown;
      try {
        header = JSON.parse(headerBytes.toString('utf8'));
      } catch (err) {
        throw bad(`its header is not JSON (${(err as Error).message})`);
      }
      if (!header || typeof header !== 'object' || Array.isArray(header)) throw bad('its header is not a JSON object');
      const dataStart = 8 + headerLength;
      const tensors = new Map<string, TensorEntry>();
      let metadata: Record<string, string> = {};
      for (const [name, value] of Object.entries(header as Record<string, unknown>)) {
        if (name === '__metadata__') {
          metadata = (value ?? {}) as Record<string, string>;
          continue;
        }
        const v = value as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
        const elementBytes = typeof v?.dtype === 'string' ? DTYPE_BYTES[v.dtype] : undefined;
        if (!elementBytes) throw bad(`tensor ${name} has unknown dtype ${JSON.stringify(v?.dtype)}`);
        const shape = v.shape;
        if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw bad(`tensor ${name} has shape ${JSON.stringify(shape)}`);
        const offsets = v.data_offsets;
        if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)) {
          throw bad(`tensor ${name} has data_offsets ${JSON.stringify(offsets)}`);
        }
        const [begin, end] = offsets as [number, number];
        const byteLength = shape.reduce((a: number, b: number) => a * b, 1) * elementBytes;
        if (end - begin !== byteLength) throw bad(`tensor ${name} (${v.dtype} [${shape}]) needs ${byteLength} bytes, its data_offsets span ${end - begin}`);
        if (dataStart + end > size) throw bad(`tensor ${name} ends at byte ${dataStart + end}, past the end of the file (${size} bytes)`);
        tensors.set(name, { name, dtype: v.dtype as string, shape: shape as number[], offset: dataStart + begin, byteLength });
      }
      return new SafetensorsFile(path, fd, tensors, metadata);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /**
   * Reads a F32, F16 or BF16 tensor as float32 (row-major, the file's shape), into the start of
   * `into` when it is given and large enough (no allocation), else into a new array.
   */
  readFloat32(name: string, into?: Float32Array): Float32Array {
    const t = this.tensors.get(name);
    if (!t) throw new ImportError('KVF_IMPORT_MALFORMED', `${this.path} has no tensor ${name}`);
    const fd = this.descriptor();
    const count = t.byteLength / (DTYPE_BYTES[t.dtype] as number);
    const out = into && into.length >= count ? into.subarray(0, count) : new Float32Array(count);
    if (t.dtype === 'F32') {
      readFully(fd, new Uint8Array(out.buffer, out.byteOffset, out.byteLength), t.offset);
      return out;
    }
    if (t.dtype !== 'F16' && t.dtype !== 'BF16') {
      throw new ImportError('KVF_IMPORT_UNSUPPORTED', `tensor ${name} in ${this.path} is ${t.dtype}; weights are read from ${FLOAT_DTYPES.join(', ')}`);
    }
    const decode = t.dtype === 'F16' ? float16ToFloat32 : bfloat16ToFloat32;
    const chunk = new Uint16Array(Math.min(READ_CHUNK, t.byteLength) / 2);
    const chunkBytes = new Uint8Array(chunk.buffer);
    for (let done = 0; done < count; done += chunk.length) {
      const n = Math.min(chunk.length, count - done);
      readFully(fd, chunkBytes.subarray(0, n * 2), t.offset + done * 2);
      decode(chunk.subarray(0, n), out.subarray(done, done + n));
    }
    return out;
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private descriptor(): number {
    if (this.fd === null) throw new Error(`${this.path} is closed`);
    return this.fd;
  }
}

/** Fills `into` from the file at `position`, looping over short reads. */
function readFully(fd: number, into: Uint8Array, position: number): void {
  let at = 0;
  while (at < into.byteLength) {
    const n = readSync(fd, into, at, Math.min(MAX_IO, into.byteLength - at), position + at);
    if (n === 0) throw new ImportError('KVF_IMPORT_MALFORMED', `unexpected end of file at byte ${position + at}`);
    at += n;
  }
}

/** A tensor to write: its header fields and a function that emits its bytes, in order, in any chunks. */
export interface TensorToWrite {
  readonly name: string;
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly write: (emit: (bytes: Uint8Array) => void) => void;
}

/**
 * Writes a safetensors file tensor by tensor: the header first (padded with spaces to 8 bytes, as
 * the safetensors library does), then each tensor's bytes as its `write` emits them, so a file of
 * any size is written holding one chunk at a time.
 */
export function writeSafetensors(path: string, tensors: readonly TensorToWrite[], metadata: Record<string, string> = {}): void {
  const header: Record<string, unknown> = Object.keys(metadata).length ? { __metadata__: metadata } : {};
  let offset = 0;
  const sizes = tensors.map((t) => {
    const elementBytes = DTYPE_BYTES[t.dtype];
    if (!elementBytes) throw new RangeError(`safetensors: unknown dtype ${t.dtype} for ${t.name}`);
    const byteLength = t.shape.reduce((a, b) => a * b, 1) * elementBytes;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + byteLength] };
    offset += byteLength;
    return byteLength;
  });
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const fd = openSync(path, 'w');
  try {
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(headerBytes.byteLength));
    writeFully(fd, length);
    writeFully(fd, headerBytes);
    tensors.forEach((t, i) => {
      let written = 0;
      t.write((bytes) => {
        writeFully(fd, bytes);
        written += bytes.byteLength;
      });
      if (written !== sizes[i]) throw new RangeError(`safetensors: ${t.name} emitted ${written} bytes, its shape needs ${sizes[i]}`);
    });
  } finally {
    closeSync(fd);
  }
}

function writeFully(fd: number, bytes: Uint8Array): void {
  let at = 0;
  while (at < bytes.byteLength) at += writeSync(fd, bytes, at, Math.min(MAX_IO, bytes.byteLength - at));
}
