/**
 * A temporary append-only file holding decoded texts while an input is read, so that grouping can
 * see every path (sorted order, directory sizes) while memory holds one file at a time.
 */
import { mkdtemp, open, rm } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Where one text lies in the spool. */
export interface SpoolRange {
  readonly offset: number;
  readonly bytes: number;
}

/** Texts written once, read back by range; `remove()` deletes the folder. */
export class TextSpool {
  readonly #dir: string;
  readonly #handle: FileHandle;
  #size = 0;

  private constructor(dir: string, handle: FileHandle) {
    this.#dir = dir;
    this.#handle = handle;
  }

  /** Creates a spool in a new folder under `parent` (default: the OS temp folder). */
  static async create(parent: string = tmpdir()): Promise<TextSpool> {
    const dir = await mkdtemp(join(parent, 'kvfold-ingest-'));
    return new TextSpool(dir, await open(join(dir, 'texts.bin'), 'w+'));
  }

  /** Appends `bytes`; returns where they are. */
  async append(bytes: Uint8Array): Promise<SpoolRange> {
    const offset = this.#size;
    await this.#handle.write(bytes, 0, bytes.byteLength, offset);
    this.#size += bytes.byteLength;
    return { offset, bytes: bytes.byteLength };
  }

  /** Reads `range` into `target` at `at`. */
  async readInto(range: SpoolRange, target: Buffer, at: number): Promise<void> {
    let done = 0;
    while (done < range.bytes) {
      const { bytesRead } = await this.#handle.read(target, at + done, range.bytes - done, range.offset + done);
      if (bytesRead === 0) throw new Error(`spool ${this.#dir} ended early reading [${range.offset}, ${range.offset + range.bytes})`);
      done += bytesRead;
    }
  }

  async remove(): Promise<void> {
    await this.#handle.close().catch(() => {});
    await rm(this.#dir, { recursive: true, force: true });
  }
}
