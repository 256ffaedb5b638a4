/**
 * Where a graph's large initializers go: the external-data file beside `model.onnx`, laid out as
 * onnx's own writer does (each tensor at a 4096-byte aligned offset, so a runtime can map it).
 *
 * The layout is one piece of arithmetic whichever way the bytes travel: `ExternalData` assigns
 * offsets and hands the padded bytes to a sink as each tensor is added, so a builder with a file
 * sink holds no weight after it is written, and an in-memory sink gives the same bytes at the end.
 */
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/** Byte alignment of tensors in the external-data file (as onnx's own writer uses for mmap). */
export const EXTERNAL_ALIGNMENT = 4096;

/** Receives the external-data file's bytes, in order. */
export interface ExternalDataSink {
  /** Takes the bytes before returning: the caller may reuse their memory afterwards. */
  write(bytes: Uint8Array): void;
}

/** Where one tensor lies in the external-data file. */
export interface ExternalPlacement {
  readonly offset: number;
  readonly length: number;
}

/** Assigns aligned offsets and forwards each tensor (with its padding) to the sink. */
export class ExternalData {
  private offset = 0;

  constructor(
    /** File name of the external data, relative to the model file. */
    readonly name: string,
    /** Initializers of at least this many bytes go to the external-data file. */
    readonly threshold: number,
    private readonly sink: ExternalDataSink,
  ) {}

  /** Bytes written so far. */
  get length(): number {
    return this.offset;
  }

  /** Appends one tensor's bytes at the next aligned offset. */
  place(bytes: Uint8Array): ExternalPlacement {
    const pad = (EXTERNAL_ALIGNMENT - (this.offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
    if (pad) this.sink.write(new Uint8Array(pad));
    const offset = this.offset + pad;
    this.sink.write(bytes);
    this.offset = offset + bytes.byteLength;
    return { offset, length: bytes.byteLength };
  }
}

/** Keeps a copy of every chunk; `bytes()` concatenates them. */
export class MemorySink implements ExternalDataSink {
  private readonly chunks: Uint8Array[] = [];
  private total = 0;

  write(bytes: Uint8Array): void {
    this.chunks.push(bytes.slice());
    this.total += bytes.byteLength;
  }

  /** The concatenated bytes, or null when nothing was written. */
  bytes(): Uint8Array | null {
    if (!this.chunks.length) return null;
    const out = new Uint8Array(this.total);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

/** Largest single write (Node's fs calls take at most 2 GiB - 1 at a time). */
const MAX_WRITE = 1 << 30;

/**
 * Writes straight to a file through a synchronous descriptor, so nothing is buffered in memory.
 * The file is created on the first write: a graph with no external tensor leaves none behind.
 */
export class FileSink implements ExternalDataSink {
  private fd: number | null = null;
  private closed = false;
  private written = 0;

  constructor(readonly path: string) {}

  /** Bytes written to the file. */
  get length(): number {
    return this.written;
  }

  write(bytes: Uint8Array): void {
    if (this.closed) throw new Error(`external data ${this.path} is already closed`);
    if (this.fd === null) {
      mkdirSync(dirname(this.path), { recursive: true });
      this.fd = openSync(this.path, 'w');
    }
    let at = 0;
    while (at < bytes.byteLength) {
      const n = writeSync(this.fd, bytes, at, Math.min(MAX_WRITE, bytes.byteLength - at));
      at += n;
    }
    this.written += bytes.byteLength;
  }

  /** Closes the file; true when it was created. */
  close(): boolean {
    this.closed = true;
    if (this.fd === null) return false;
    closeSync(this.fd);
    this.fd = null;
    return true;
  }
}
