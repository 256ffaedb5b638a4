/**
 * KvBuffer: a KV cache in preallocated typed arrays, updated in place.
 *
 *     layers[l].key, layers[l].value: [kvHeads, capacity, headDim]   rows [0, length) valid
 *
 * Appending writes the new rows after the held ones; rewinding only moves `length`; growth
 * reallocates (to the size asked, or to double when an append overflows) and is the one
 * operation that copies the held rows. Every copy it makes is counted in `copiedBytes`, so a
 * caller can prove that a step costs what its new rows cost, not what the cache holds.
 *
 * It is synchronous and pure: the in-process cache (`HostKvCache`) and a model adapter's own cache
 * (the ONNX session thread's) are both built on it.
 */
import { KvCacheError } from './errors.ts';
import { int8RoundTrip } from './int8.ts';
import type { KvMark, KvPositions } from './kv-cache.ts';
import { allocKv, assertRowsFit, type KvData, type KvLayerRows, type KvLayout, type KvRows, kvDtypeBytes, kvRowBytes } from './kv-layout.ts';
import { rotateKeyRows } from './rope.ts';

/** Order of a block of new rows: [kvHeads, rows, headDim] (optimum's present layout) or [rows, kvHeads, headDim] (packed heads, as GroupQueryAttention takes its keys). */
export type RowOrder = 'heads-first' | 'rows-first';

export interface KvBufferOptions {
  /** Called before any allocation with the bytes and rows about to be allocated; may throw to refuse. */
  readonly guard?: (bytes: number, rows: number) => void;
}

export class KvBuffer implements KvPositions {
  readonly layout: KvLayout;
  length = 0;
  nextPosition = 0;
  tokensSeen = 0;
  /** Bytes copied by this buffer so far (appends, reads, growth, eviction, quantization). */
  copiedBytes = 0;
  /** Increments whenever the arrays are replaced (growth): views of the old ones are stale. */
  generation = 0;
  #capacity = 0;
  #layers: { key: KvData; value: KvData }[] = []; // [layers][kvHeads, capacity, headDim]
  readonly #guard: KvBufferOptions['guard'];

  constructor(layout: KvLayout, capacity: number, options: KvBufferOptions = {}) {
    this.layout = layout;
    this.#guard = options.guard;
    this.#allocate(checkRows(capacity, 'capacity'));
  }

  get capacity(): number {
    return this.#capacity;
  }

  /** Bytes one row takes across layers, K and V. */
  get rowBytes(): number {
    return kvRowBytes(this.layout);
  }

  get bytes(): number {
    return this.length * this.rowBytes;
  }

  get allocatedBytes(): number {
    return this.#capacity * this.rowBytes;
  }

  /** Layer l's arrays ([kvHeads, capacity, headDim]); valid until the next growth. */
  layer(l: number): { readonly key: KvData; readonly value: KvData } {
    const layer = this.#layers[l];
    if (!layer) throw new RangeError(`layer ${l} is outside a cache of ${this.layout.layers} layers`);
    return layer;
  }

  /** Grows to hold at least `rows` rows (exactly `rows` when that is more than now). */
  reserve(rows: number): void {
    checkRows(rows, 'rows');
    if (rows > this.#capacity) this.#allocate(rows);
  }

  /** Makes room for `n` more rows, doubling when the capacity runs out. */
  ensureRoom(n: number): void {
    const needed = this.length + n;
    if (needed > this.#capacity) this.#allocate(Math.max(needed, this.#capacity * 2));
  }

  /**
   * Writes `n` new rows of layer `l` after the held ones (room must exist: `ensureRoom`). Call it
   * for every layer, then `advance(n)`.
   */
  writeLayer(l: number, key: KvData, value: KvData, n: number, order: RowOrder): void {
    const { kvHeads, headDim } = this.layout;
    if (this.length + n > this.#capacity) throw new RangeError(`${n} rows do not fit after ${this.length} in a capacity of ${this.#capacity}`);
    if (key.length !== kvHeads * n * headDim || value.length !== key.length) {
      throw new RangeError(`layer ${l}: ${n} rows need ${kvHeads * n * headDim} elements per K/V, got ${key.length}/${value.length}`);
    }
    const dst = this.layer(l);
    writeRows(dst.key, key, kvHeads, this.#capacity, headDim, this.length, n, order);
    writeRows(dst.value, value, kvHeads, this.#capacity, headDim, this.length, n, order);
    this.copiedBytes += 2 * key.length * kvDtypeBytes(this.layout.dtype);
  }

  /** Counts `n` written rows as held; positions advance with them (or stand at `positions`). */
  advance(n: number, positions?: KvPositions): void {
    this.length += n;
    this.nextPosition = positions ? positions.nextPosition : this.nextPosition + n;
    this.tokensSeen = positions ? positions.tokensSeen : this.tokensSeen + n;
  }

  /** Appends rows given as [kvHeads, rows, headDim] per layer. */
  append(rows: KvRows, positions?: KvPositions): void {
    assertRowsFit(this.layout, rows);
    this.ensureRoom(rows.rows);
    for (const [i, l] of rows.layers.entries()) this.writeLayer(i, l.key, l.value, rows.rows, 'heads-first');
    this.advance(rows.rows, positions);
  }

  /** A copy of rows [from, to). */
  read(from: number, to: number): KvRows {
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= this.length)) {
      throw new RangeError(`row range [${from}, ${to}) is outside a cache of ${this.length} rows`);
    }
    const { kvHeads, headDim, dtype } = this.layout;
    const n = to - from;
    const copy = (src: KvData): KvData => {
      const out = allocKv(dtype, kvHeads * n * headDim);
      for (let h = 0; h < kvHeads; h++) {
        const at = (h * this.#capacity + from) * headDim;
        out.set(src.subarray(at, at + n * headDim), h * n * headDim);
      }
      return out;
    };
    const layers: KvLayerRows[] = this.#layers.map((l) => ({ key: copy(l.key), value: copy(l.value) }));
    this.copiedBytes += n * this.rowBytes;
    return { rows: n, layers };
  }

  mark(): KvMark {
    return { length: this.length, nextPosition: this.nextPosition, tokensSeen: this.tokensSeen };
  }

  /** Returns to `mark`; rows after it are dropped (and overwritten by later appends). */
  rewind(mark: KvMark): void {
    if (!Number.isInteger(mark.length) || mark.length < 0 || mark.length > this.length) {
      throw new KvCacheError('KVF_KV_REWIND', `cannot rewind a cache of ${this.length} rows to ${mark.length} rows: a rewind only drops rows the cache holds`);
    }
    this.length = mark.length;
    this.nextPosition = mark.nextPosition;
    this.tokensSeen = mark.tokensSeen;
  }

  /** Removes rows [from, from + count); later rows move down and their keys turn by -count positions. */
  evict(from: number, count: number, invFreq: Float64Array): void {
    const { kvHeads, headDim, dtype } = this.layout;
    if (!(Number.isInteger(from) && Number.isInteger(count) && from >= 0 && count >= 0 && from + count <= this.length)) {
      throw new RangeError(`cannot evict rows [${from}, ${from + count}) from a cache of ${this.length} rows`);
    }
    if (count === 0) return;
    if (dtype !== 'float32') throw new RangeError('eviction re-rotates keys and supports float32 caches only');
    if (invFreq.length !== headDim / 2) throw new RangeError(`${invFreq.length} RoPE frequencies for head dim ${headDim}`);
    const kept = this.length - from - count;
    for (const l of this.#layers) {
      for (const data of [l.key, l.value]) {
        for (let h = 0; h < kvHeads; h++) {
          const base = h * this.#capacity * headDim;
          data.copyWithin(base + from * headDim, base + (from + count) * headDim, base + this.length * headDim);
        }
      }
      rotateKeyRows(l.key as Float32Array, kvHeads, this.#capacity, headDim, from, from + kept, -count, invFreq);
    }
    this.copiedBytes += kept * this.rowBytes;
    this.length -= count;
    this.nextPosition -= count;
  }

  /** Replaces rows [from, to) of every layer with their int8 round trip (per-channel scales over the range). */
  quantize(from: number, to: number): void {
    const { kvHeads, headDim, dtype } = this.layout;
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= this.length)) {
      throw new RangeError(`row range [${from}, ${to}) is outside a cache of ${this.length} rows`);
    }
    if (dtype !== 'float32') throw new RangeError('int8 quantization of the cache supports float32 caches only');
    for (const l of this.#layers) {
      int8RoundTrip(l.key as Float32Array, kvHeads, this.#capacity, headDim, from, to);
      int8RoundTrip(l.value as Float32Array, kvHeads, this.#capacity, headDim, from, to);
    }
    this.copiedBytes += (to - from) * this.rowBytes;
  }

  #allocate(capacity: number): void {
    const { kvHeads, headDim, dtype, layers } = this.layout;
    const bytes = capacity * this.rowBytes;
    this.#guard?.(bytes, capacity);
    let next: { key: KvData; value: KvData }[];
    try {
      next = Array.from({ length: layers }, () => ({ key: allocKv(dtype, kvHeads * capacity * headDim), value: allocKv(dtype, kvHeads * capacity * headDim) }));
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new KvCacheError(
        'KVF_KV_NO_MEMORY',
        `cannot allocate a KV cache of ${capacity} rows (${formatBytes(bytes)}, ${formatBytes(this.rowBytes)} a row): ${err.message}`,
      );
    }
    if (this.length > 0) {
      for (let l = 0; l < layers; l++) {
        const from = this.#layers[l] as { key: KvData; value: KvData };
        const to = next[l] as { key: KvData; value: KvData };
        for (let h = 0; h < kvHeads; h++) {
          const src = h * this.#capacity * headDim;
          to.key.set(from.key.subarray(src, src + this.length * headDim), h * capacity * headDim);
          to.value.set(from.value.subarray(src, src + this.length * headDim), h * capacity * headDim);
        }
      }
      this.copiedBytes += this.length * this.rowBytes;
    }
    this.#layers = next;
    this.#capacity = capacity;
    this.generation++;
  }
}

/** Writes n rows into rows [at, at + n) of a [kvHeads, capacity, headDim] tensor. */
function writeRows(dst: KvData, src: KvData, kvHeads: number, capacity: number, headDim: number, at: number, n: number, order: RowOrder): void {
  if (order === 'heads-first') {
    for (let h = 0; h < kvHeads; h++) dst.set(src.subarray(h * n * headDim, (h + 1) * n * headDim), (h * capacity + at) * headDim);
    return;
  }
  for (let r = 0; r < n; r++) {
    for (let h = 0; h < kvHeads; h++) {
      const s = (r * kvHeads + h) * headDim;
      dst.set(src.subarray(s, s + headDim), (h * capacity + at + r) * headDim);
    }
  }
}

function checkRows(rows: number, what: string): number {
  if (!Number.isInteger(rows) || rows < 0) throw new RangeError(`${what} must be an integer >= 0, got ${rows}`);
  return rows;
}

/** 1536 -> "1.5 KiB", 4294967296 -> "4.0 GiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}
