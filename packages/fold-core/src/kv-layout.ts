/**
 * The shape of a model's KV cache and of the rows that move in and out of it.
 *
 * Every K or V tensor, for one layer, is laid out as an optimum-style ONNX export feeds it back as
 * `past_key_values.{i}.key|value` (batch 1 dropped):
 *
 *     [kvHeads, rows, headDim]   row-major
 *
 * float16 caches are carried as their raw IEEE-754 half bits in a Uint16Array; this package never
 * does arithmetic on them, it only moves rows.
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

/** Rows for every layer: a step's new rows, a checkpoint segment. */
export interface KvRows {
  readonly rows: number;
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

/** Bytes of K and V one token adds across all layers. */
export function kvRowBytes(layout: KvLayout): number {
  return 2 * layout.layers * layout.kvHeads * layout.headDim * kvDtypeBytes(layout.dtype);
}

/** Checks that rows fit the layout; throws instead of letting a wrong shape reach the model. */
export function assertRowsFit(layout: KvLayout, rows: KvRows): void {
  if (rows.layers.length !== layout.layers) {
    throw new RangeError(`rows have ${rows.layers.length} layers, the cache has ${layout.layers}`);
  }
  const n = layout.kvHeads * rows.rows * layout.headDim;
  rows.layers.forEach((l, i) => {
    if (l.key.length !== n || l.value.length !== n) {
      throw new RangeError(`layer ${i}: expected ${n} elements per K/V for ${rows.rows} rows, got ${l.key.length}/${l.value.length}`);
    }
    if (!(l.key instanceof (layout.dtype === 'float32' ? Float32Array : Uint16Array))) {
      throw new RangeError(`layer ${i}: rows are not ${layout.dtype} data`);
    }
  });
}

/** Two layouts describe the same cache geometry (positions aside). */
export function sameGeometry(a: KvLayout, b: KvLayout): boolean {
  return a.layers === b.layers && a.kvHeads === b.kvHeads && a.headDim === b.headDim && a.dtype === b.dtype;
}

/** `layers x kvHeads x headDim dtype`, for messages. */
export function describeLayout(l: KvLayout): string {
  return `${l.layers}x${l.kvHeads}x${l.headDim} ${l.dtype}`;
}
