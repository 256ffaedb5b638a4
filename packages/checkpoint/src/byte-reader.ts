/**
 * Pulls exact byte counts out of an async stream of chunks, hashing every byte it hands out.
 */
import { createHash, type Hash } from 'node:crypto';
import { checkpointErrors } from './errors.ts';

export class ByteReader {
  readonly #it: AsyncIterator<Uint8Array | string>;
  readonly #name: string;
  readonly hash: Hash = createHash('sha256');
  #chunk: Uint8Array = new Uint8Array(0);
  #at = 0;
  /** Bytes handed out so far. */
  consumed = 0;

  constructor(source: AsyncIterable<Uint8Array | string>, name: string) {
    this.#it = source[Symbol.asyncIterator]();
    this.#name = name;
  }

  /** Fills `dst` completely; throws KVF_CKPT_CORRUPT (truncated) when the stream ends first. */
  async readInto(dst: Uint8Array, hashed = true): Promise<void> {
    let filled = 0;
    while (filled < dst.length) {
      if (this.#at >= this.#chunk.length && !(await this.#pull())) {
        throw checkpointErrors.corrupt(
          this.#name,
          `truncated: the stream ended after ${this.consumed + filled} bytes, ${dst.length - filled} more were expected`,
        );
      }
      const n = Math.min(dst.length - filled, this.#chunk.length - this.#at);
      dst.set(this.#chunk.subarray(this.#at, this.#at + n), filled);
      this.#at += n;
      filled += n;
    }
    if (hashed) this.hash.update(dst);
    this.consumed += dst.length;
  }

  /** Reads `n` bytes into a new array. */
  async read(n: number, hashed = true): Promise<Uint8Array> {
    const out = new Uint8Array(n);
    await this.readInto(out, hashed);
    return out;
  }

  /** Whether the stream has bytes left. */
  async hasMore(): Promise<boolean> {
    return this.#at < this.#chunk.length || (await this.#pull());
  }

  /** Stops reading the source (closes a file or socket early). */
  async close(): Promise<void> {
    await this.#it.return?.();
  }

  async #pull(): Promise<boolean> {
    for (;;) {
      const next = await this.#it.next();
      if (next.done) return false;
      const chunk = typeof next.value === 'string' ? Buffer.from(next.value) : next.value;
      if (chunk.length === 0) continue;
      this.#chunk = chunk;
      this.#at = 0;
      return true;
    }
  }
}
