/**
 * KvBuffer: a KV cache in preallocated typed arrays, updated in place.
 *
 *     layers[l].key, layers[l].value: [kvHeads, capacity, headDim]   rows [0, length) valid
 *     layers[l].keyScales, .valueScales: [kvHeads, capacity]         int8 only: each row's scale
 *
 * at the layout's width (float32, float16 bits or int8 codes: kv-layout.ts).
 * Appending writes the new rows after the held ones; rewinding only moves `length`; growth
 * reallocates (to the size asked, or to double when an append overflows) and is the one
 * operation that copies the held rows. Every copy it makes is counted in `copiedBytes`, so a
 * caller can prove that a step costs what its new rows cost, not what the cache holds.
 *
 * It is synchronous and pure: the in-process cache (`HostKvCache`) and a model adapter's own cache
 * (the ONNX session thread's) are both built on it.
 */
import { KvCacheError } from './errors.ts';
import { float16Bits, float16Value } from './float16.ts';
import { int8QuantizeRow } from './int8.ts';
import type { KvMark, KvPositions } from './kv-cache.ts';
import { allocKv, assertRowsFit, type KvData, type KvLayerRows, type KvLayout, type KvRows, kvHeadRowBytes, kvRowBytes } from './kv-layout.ts';
import { rotateKeyRows } from './rope.ts';

/** One layer's storage: K and V [kvHeads, capacity, headDim], and for int8 their row scales [kvHeads, capacity]. */
export interface KvLayerStorage {
  readonly key: KvData;
  readonly value: KvData;
  readonly keyScales?: Float32Array;
  readonly valueScales?: Float32Array;
}

/** New rows' scales as a step produces them, in the order of its rows: [n, kvHeads] rows-first, [kvHeads, n] heads-first. */
export interface RowScales {
  readonly key: Float32Array;
  readonly value: Float32Array;
}

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
  #layers: KvLayerStorage[] = []; // [layers]
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

  /** Layer l's arrays; valid until the next growth. */
  layer(l: number): KvLayerStorage {
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
   * Writes `n` new rows of layer `l` after the held ones (room must exist: `ensureRoom`), at the
   * buffer's width; an int8 buffer takes their `scales` too. Call it for every layer, then `advance(n)`.
   */
  writeLayer(l: number, key: KvData, value: KvData, n: number, order: RowOrder, scales?: RowScales): void {
    const { kvHeads, headDim } = this.layout;
    if (this.length + n > this.#capacity) throw new RangeError(`${n} rows do not fit after ${this.length} in a capacity of ${this.#capacity}`);
    if (key.length !== kvHeads * n * headDim || value.length !== key.length) {
      throw new RangeError(`layer ${l}: ${n} rows need ${kvHeads * n * headDim} elements per K/V, got ${key.length}/${value.length}`);
    }
    const dst = this.layer(l);
    writeRows(dst.key, key, kvHeads, this.#capacity, headDim, this.length, n, order);
    writeRows(dst.value, value, kvHeads, this.#capacity, headDim, this.length, n, order);
    if (dst.keyScales && dst.valueScales) {
      if (scales?.key.length !== kvHeads * n || scales.value.length !== kvHeads * n) throw new RangeError(`layer ${l}: ${n} int8 rows need ${kvHeads * n} scales per K/V`);
      writeRows(dst.keyScales, scales.key, kvHeads, this.#capacity, 1, this.length, n, order);
      writeRows(dst.valueScales, scales.value, kvHeads, this.#capacity, 1, this.length, n, order);
    }
    this.copiedBytes += 2 * kvHeads * n * kvHeadRowBytes(this.layout);
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
    for (const [i, l] of rows.layers.entries()) {
      const scales = l.keyScales && l.valueScales ? { key: l.keyScales, value: l.valueScales } : undefined;
      this.writeLayer(i, l.key, l.value, rows.rows, 'heads-first', scales);
    }
    this.advance(rows.rows, positions);
  }

  /** A copy of rows [from, to). */
  read(from: number, to: number): KvRows {
    if (!(Number.isInteger(from) && Number.isInteger(to) && 0 <= from && from <= to && to <= this.length)) {
      throw new RangeError(`row range [${from}, ${to}) is outside a cache of ${this.length} rows`);
    }
    const { kvHeads, headDim, dtype } = this.layout;
    const n = to - from;
    const copy = <T extends KvData>(src: T, width: number, out: T): T => {
      for (let h = 0; h < kvHeads; h++) {
        const at = (h * this.#capacity + from) * width;
        out.set(src.subarray(at, at + n * width) as never, h * n * width);
      }
      return out;
    };
    const layers: KvLayerRows[] = this.#layers.map((l) => ({
      key: copy(l.key, headDim, allocKv(dtype, kvHeads * n * headDim)),
      value: copy(l.value, headDim, allocKv(dtype, kvHeads * n * headDim)),
      ...(l.keyScales && l.valueScales
        ? { keyScales: copy(l.keyScales, 1, new Float32Array(kvHeads * n)), valueScales: copy(l.valueScales, 1, new Float32Array(kvHeads * n)) }
        : {}),
    }));
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

  /**
   * Removes rows [from, from + count); later rows move down and their keys turn by -count
   * positions. A float16 or int8 key is read back to float32, turned, and stored again at the
   * buffer's width (an int8 row with its own new scale).
   */
  evict(from: number, count: number, invFreq: Float64Array): void {
    const { kvHeads, headDim } = this.layout;
    if (!(Number.isInteger(from) && Number.isInteger(count) && from >= 0 && count >= 0 && from + count <= this.length)) {
      throw new RangeError(`cannot evict rows [${from}, ${from + count}) from a cache of ${this.length} rows`);
    }
    if (count === 0) return;
    if (invFreq.length !== headDim / 2) throw new RangeError(`${invFreq.length} RoPE frequencies for head dim ${headDim}`);
    const kept = this.length - from - count;
    const cap = this.#capacity;
    const moveDown = (data: KvData, width: number) => {
      for (let h = 0; h < kvHeads; h++) {
        const base = h * cap * width;
        data.copyWithin(base + from * width, base + (from + count) * width, base + this.length * width);
      }
    };
    for (const l of this.#layers) {
      moveDown(l.key, headDim);
      moveDown(l.value, headDim);
      if (l.keyScales && l.valueScales) {
        moveDown(l.keyScales, 1);
        moveDown(l.valueScales, 1);
      }
      this.#rotateKeys(l, from, from + kept, -count, invFreq);
    }
    this.copiedBytes += kept * this.rowBytes;
    this.length -= count;
    this.nextPosition -= count;
  }

  /** Turns the keys of rows [from, to) by `delta` positions under RoPE, at the buffer's width. */
  #rotateKeys(l: KvLayerStorage, from: number, to: number, delta: number, invFreq: Float64Array): void {
    const { kvHeads, headDim } = this.layout;
    const cap = this.#capacity;
    const key = l.key;
    if (key instanceof Float32Array) {
      rotateKeyRows(key, kvHeads, cap, headDim, from, to, delta, invFreq);
      return;
    }
    // The rows read back as float32 [kvHeads, to - from, headDim], turned, and written back at the buffer's width.
    const n = to - from;
    const rows = new Float32Array(kvHeads * n * headDim);
    const scales = l.keyScales;
    for (let h = 0; h < kvHeads; h++) {
      for (let r = 0; r < n; r++) {
        const src = (h * cap + from + r) * headDim;
        const dst = (h * n + r) * headDim;
        const scale = scales ? (scales[h * cap + from + r] as number) : 0;
        for (let d = 0; d < headDim; d++) rows[dst + d] = key instanceof Int8Array ? (key[src + d] as number) * scale : float16Value(key[src + d] as number);
      }
    }
    rotateKeyRows(rows, kvHeads, n, headDim, 0, n, delta, invFreq);
    for (let h = 0; h < kvHeads; h++) {
      for (let r = 0; r < n; r++) {
        const src = (h * n + r) * headDim;
        const dst = (h * cap + from + r) * headDim;
        if (key instanceof Int8Array) (scales as Float32Array)[h * cap + from + r] = int8QuantizeRow(rows, src, key, dst, headDim);
        else for (let d = 0; d < headDim; d++) key[dst + d] = float16Bits(rows[src + d] as number);
      }
    }
  }

  #allocate(capacity: number): void {
    const { kvHeads, headDim, dtype, layers } = this.layout;
    const bytes = capacity * this.rowBytes;
    this.#guard?.(bytes, capacity);
    let next: KvLayerStorage[];
    try {
      next = Array.from({ length: layers }, () => ({
        key: allocKv(dtype, kvHeads * capacity * headDim),
        value: allocKv(dtype, kvHeads * capacity * headDim),
        ...(dtype === 'int8' ? { keyScales: new Float32Array(kvHeads * capacity), valueScales: new Float32Array(kvHeads * capacity) } : {}),
      }));
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      throw new KvCacheError(
        'KVF_KV_NO_MEMORY',
        `cannot allocate a KV cache of ${capacity} rows (${formatBytes(bytes)}, ${formatBytes(this.rowBytes)} a row): ${err.message}`,
      );
    }
    if (this.length > 0) {
      const copyRows = (from: KvData, to: KvData, width: number) => {
        for (let h = 0; h < kvHeads; h++) {
          const src = h * this.#capacity * width;
          to.set(from.subarray(src, src + this.length * width) as never, h * capacity * width);
        }
      };
      for (let l = 0; l < layers; l++) {
        const from = this.#layers[l] as KvLayerStorage;
        const to = next[l] as KvLayerStorage;
        copyRows(from.key, to.key, headDim);
        copyRows(from.value, to.value, headDim);
        if (from.keyScales && to.keyScales && from.valueScales && to.valueScales) {
          copyRows(from.keyScales, to.keyScales, 1);
          copyRows(from.valueScales, to.valueScales, 1);
        }
      }
      this.copiedBytes += this.length * this.rowBytes;
    }
    this.#layers = next;
    this.#capacity = capacity;
    this.generation++;
  }
}

/** Writes n rows into rows [at, at + n) of a [kvHeads, capacity, width] tensor (width 1: row scales). */
function writeRows(dst: KvData, src: KvData, kvHeads: number, capacity: number, width: number, at: number, n: number, order: RowOrder): void {
  if (order === 'heads-first') {
    for (let h = 0; h < kvHeads; h++) dst.set(src.subarray(h * n * width, (h + 1) * n * width) as never, (h * capacity + at) * width);
    return;
  }
  for (let r = 0; r < n; r++) {
    for (let h = 0; h < kvHeads; h++) {
      const s = (r * kvHeads + h) * width;
      dst.set(src.subarray(s, s + width) as never, (h * capacity + at + r) * width);
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
