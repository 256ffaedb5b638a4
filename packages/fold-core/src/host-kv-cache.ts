/**
 * HostKvCache: the KvCache port over a KvBuffer in this process's memory. It serves models that
 * run in-process (pure test models, reference decoders) and tools that hold rows on the host
 * (checkpoint tests and benchmarks). A model adapter that runs elsewhere keeps its own cache
 * there and offers the same port.
 */
import { KvBuffer, type KvBufferOptions } from './kv-buffer.ts';
import { KvCacheError } from './errors.ts';
import type { KvCache, KvMark, KvPositions } from './kv-cache.ts';
import type { KvLayout, KvRows } from './kv-layout.ts';

export class HostKvCache implements KvCache {
  readonly buffer: KvBuffer;
  #released = false;

  constructor(layout: KvLayout, capacity = 0, options: KvBufferOptions = {}) {
    this.buffer = new KvBuffer(layout, capacity, options);
  }

  get layout(): KvLayout {
    return this.buffer.layout;
  }
  get length(): number {
    return this.buffer.length;
  }
  get nextPosition(): number {
    return this.buffer.nextPosition;
  }
  get tokensSeen(): number {
    return this.buffer.tokensSeen;
  }
  get capacity(): number {
    return this.buffer.capacity;
  }
  get bytes(): number {
    return this.buffer.bytes;
  }
  get allocatedBytes(): number {
    return this.buffer.allocatedBytes;
  }

  async reserve(rows: number): Promise<void> {
    this.#live().reserve(rows);
  }
  async read(from: number, to: number): Promise<KvRows> {
    return this.#live().read(from, to);
  }
  async append(rows: KvRows, positions?: KvPositions): Promise<void> {
    this.#live().append(rows, positions);
  }
  mark(): KvMark {
    return this.#live().mark();
  }
  async rewind(mark: KvMark): Promise<void> {
    this.#live().rewind(mark);
  }
  async evict(from: number, count: number, invFreq: Float64Array): Promise<void> {
    this.#live().evict(from, count, invFreq);
  }
  async release(): Promise<void> {
    this.#released = true;
  }

  #live(): KvBuffer {
    if (this.#released) throw new KvCacheError('KVF_KV_RELEASED', 'the KV cache was released; create a new one');
    return this.buffer;
  }
}
