/**
 * The KV cache as the fold's accumulator.
 *
 * A state holds, for every layer, the keys and values of every token kept so far, in the layout an
 * optimum-style ONNX export feeds back as `past_key_values.{i}.key|value` (batch 1 dropped):
 *
 *     key, value: [kvHeads, length, headDim]   row-major
 *
 * float16 caches are carried as their raw IEEE-754 half bits in a Uint16Array; this package never
 * does arithmetic on them, it only moves rows. States are values: `appendRows` returns a new state
 * and leaves its input intact, so every query can start from the same folded state.
 */

export type KvDtype = 'float32' | 'float16';

/** Typed-array storage for one K or V tensor: float32 values, or float16 bits. */
export type KvData = Float32Array | Uint16Array;

/** The shape of a model's cache, read from the model; nothing here assumes a layer count or dtype. */
export interface KvLayout {
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  readonly dtype: KvDtype;
  /** Positions the model was trained for (config `max_position_embeddings`). */
  readonly maxPositions: number;
}

/** Rows of K and V for one layer. */
export interface KvLayerRows {
  readonly key: KvData; // [kvHeads, rows, headDim]
  readonly value: KvData; // [kvHeads, rows, headDim]
}

/** New rows for every layer, as returned by one model step. */
export interface KvRows {
  readonly rows: number;
  readonly layers: readonly KvLayerRows[]; // [layers]
}

export interface KvState {
  readonly layout: KvLayout;
  /** Rows held per layer (the attention context of the next step). */
  readonly length: number;
  /**
   * Position id the next token gets. Equal to `length` under the full policy; a policy that
   * evicts rows decides how the two relate.
   */
  readonly nextPosition: number;
  /** Tokens read so far, evicted ones included. */
  readonly tokensSeen: number;
  readonly layers: readonly KvLayerRows[]; // [layers]
}

/** Allocates storage for `n` elements of the layout's dtype. */
export function allocKv(dtype: KvDtype, n: number): KvData {
  return dtype === 'float32' ? new Float32Array(n) : new Uint16Array(n);
}

/** Bytes per element of a KV dtype. */
export function kvDtypeBytes(dtype: KvDtype): number {
  return dtype === 'float32' ? 4 : 2;
}

/** An empty state: no rows, next position 0. */
export function emptyKv(layout: KvLayout): KvState {
  const layers = Array.from({ length: layout.layers }, () => ({
    key: allocKv(layout.dtype, 0),
    value: allocKv(layout.dtype, 0),
  }));
  return { layout, length: 0, nextPosition: 0, tokensSeen: 0, layers };
}

/** Bytes of K and V held by a state. */
export function kvBytes(state: KvState): number {
  return kvRowBytes(state.layout) * state.length;
}

/** Bytes of K and V one token adds across all layers. */
export function kvRowBytes(layout: KvLayout): number {
  return 2 * layout.layers * layout.kvHeads * layout.headDim * kvDtypeBytes(layout.dtype);
}

/**
 * Concatenates two [kvHeads, rows, headDim] tensors along rows. Each head's block is contiguous,
 * so this is one copy per head per operand.
 */
export function concatRows(
  dtype: KvDtype,
  kvHeads: number,
  headDim: number,
  a: KvData,
  aRows: number,
  b: KvData,
  bRows: number,
): KvData {
  const out = allocKv(dtype, kvHeads * (aRows + bRows) * headDim);
  const aHead = aRows * headDim;
  const bHead = bRows * headDim;
  for (let h = 0; h < kvHeads; h++) {
    const base = h * (aHead + bHead);
    out.set(a.subarray(h * aHead, (h + 1) * aHead), base);
    out.set(b.subarray(h * bHead, (h + 1) * bHead), base + aHead);
  }
  return out;
}

/** Copies rows [from, to) of a [kvHeads, rows, headDim] tensor. */
export function sliceRowsOf(
  data: KvData,
  dtype: KvDtype,
  kvHeads: number,
  rows: number,
  headDim: number,
  from: number,
  to: number,
): KvData {
  if (from < 0 || to > rows || from > to) {
    throw new RangeError(`row range [${from}, ${to}) is outside a tensor of ${rows} rows`);
  }
  const n = to - from;
  const out = allocKv(dtype, kvHeads * n * headDim);
  for (let h = 0; h < kvHeads; h++) {
    const src = (h * rows + from) * headDim;
    out.set(data.subarray(src, src + n * headDim), h * n * headDim);
  }
  return out;
}

/** Checks that rows fit the layout; throws instead of letting a wrong shape reach the model. */
export function assertRowsFit(layout: KvLayout, rows: KvRows): void {
  if (rows.layers.length !== layout.layers) {
    throw new RangeError(`rows have ${rows.layers.length} layers, the cache has ${layout.layers}`);
  }
  const n = layout.kvHeads * rows.rows * layout.headDim;
  rows.layers.forEach((l, i) => {
    if (l.key.length !== n || l.value.length !== n) {
      throw new RangeError(
        `layer ${i}: expected ${n} elements per K/V for ${rows.rows} rows, got ${l.key.length}/${l.value.length}`,
      );
    }
  });
}

/**
 * What each state made by `appendRows` was made from: a weak reference to the base state and the
 * rows appended to it. Lets a model adapter that keeps the last step's cache on its side (a worker
 * thread, a GPU) prove that the next past is exactly that cache, and skip sending it again.
 */
const ORIGINS = new WeakMap<KvState, { readonly base: WeakRef<KvState>; readonly rows: KvRows }>();

/** The base state and rows `state` was appended from, when it came from `appendRows` and its base is alive. */
export function appendedFrom(state: KvState): { readonly base: KvState; readonly rows: KvRows } | undefined {
  const origin = ORIGINS.get(state);
  const base = origin?.base.deref();
  return origin && base ? { base, rows: origin.rows } : undefined;
}

/** A new state with `rows` appended after the existing rows; positions continue. */
export function appendRows(state: KvState, rows: KvRows): KvState {
  const { layout } = state;
  assertRowsFit(layout, rows);
  const layers = state.layers.map((l, i) => {
    const add = rows.layers[i] as KvLayerRows;
    return {
      key: concatRows(layout.dtype, layout.kvHeads, layout.headDim, l.key, state.length, add.key, rows.rows),
      value: concatRows(layout.dtype, layout.kvHeads, layout.headDim, l.value, state.length, add.value, rows.rows),
    };
  });
  const next: KvState = {
    layout,
    length: state.length + rows.rows,
    nextPosition: state.nextPosition + rows.rows,
    tokensSeen: state.tokensSeen + rows.rows,
    layers,
  };
  ORIGINS.set(next, { base: new WeakRef(state), rows });
  return next;
}

/** Rows [from, to) of every layer, e.g. the rows a checkpoint segment stores. */
export function sliceRows(state: KvState, from: number, to: number): KvRows {
  const { layout } = state;
  return {
    rows: to - from,
    layers: state.layers.map((l) => ({
      key: sliceRowsOf(l.key, layout.dtype, layout.kvHeads, state.length, layout.headDim, from, to),
      value: sliceRowsOf(l.value, layout.dtype, layout.kvHeads, state.length, layout.headDim, from, to),
    })),
  };
}
