/**
 * The shape of a model's KV cache and of the rows that move in and out of it.
 *
 * Every K or V tensor, for one layer, is laid out as an optimum-style ONNX export feeds it back as
 * `past_key_values.{i}.key|value` (batch 1 dropped):
 *
 *     [kvHeads, rows, headDim]   row-major
 *
 * float16 caches are carried as their raw IEEE-754 half bits in a Uint16Array; int8 caches as codes
 * in an Int8Array, each row of each head with its own float32 scale beside it (the row reads as
 * code × scale; int8.ts). This package moves rows; it does arithmetic on them only where a policy
 * must (StreamingLLM's re-rotation).
 */

export type KvDtype = 'float32' | 'float16' | 'int8';

/** The cache widths a user names (`--kv`, a batch's `kv`), and the dtype each holds. */
export const KV_WIDTHS: Readonly<Record<'f32' | 'f16' | 'int8', KvDtype>> = { f32: 'float32', f16: 'float16', int8: 'int8' };
export type KvWidth = keyof typeof KV_WIDTHS;

/** Typed-array storage for one K or V tensor: float32 values, float16 bits, or int8 codes. */
export type KvData = Float32Array | Uint16Array | Int8Array;

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
  /** int8 only: each head's row scale, a row reading as code × scale. */
  readonly keyScales?: Float32Array; // [kvHeads, rows]
  readonly valueScales?: Float32Array; // [kvHeads, rows]
}

/** Rows for every layer: a step's new rows, a checkpoint segment. */
export interface KvRows {
  readonly rows: number;
  readonly layers: readonly KvLayerRows[]; // [layers]
}

/** Allocates storage for `n` elements of the layout's dtype. */
export function allocKv(dtype: KvDtype, n: number): KvData {
  return dtype === 'float32' ? new Float32Array(n) : dtype === 'float16' ? new Uint16Array(n) : new Int8Array(n);
}

/** Bytes per element of a KV dtype. */
export function kvDtypeBytes(dtype: KvDtype): number {
  return dtype === 'float32' ? 4 : dtype === 'float16' ? 2 : 1;
}

/** Bytes of one row of one head, K or V: its values, and an int8 row's float32 scale. */
export function kvHeadRowBytes(layout: Pick<KvLayout, 'headDim' | 'dtype'>): number {
  return layout.headDim * kvDtypeBytes(layout.dtype) + (layout.dtype === 'int8' ? 4 : 0);
}

/** Bytes of K and V one token adds across all layers. */
export function kvRowBytes(layout: KvLayout): number {
  return 2 * layout.layers * layout.kvHeads * kvHeadRowBytes(layout);
}

const ARRAY_OF: Record<KvDtype, typeof Float32Array | typeof Uint16Array | typeof Int8Array> = { float32: Float32Array, float16: Uint16Array, int8: Int8Array };

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
    if (!(l.key instanceof ARRAY_OF[layout.dtype]) || !(l.value instanceof ARRAY_OF[layout.dtype])) {
      throw new RangeError(`layer ${i}: rows are not ${layout.dtype} data`);
    }
    const scales = layout.kvHeads * rows.rows;
    if (layout.dtype === 'int8' && (l.keyScales?.length !== scales || l.valueScales?.length !== scales)) {
      throw new RangeError(`layer ${i}: int8 rows need ${scales} scales per K/V, got ${l.keyScales?.length ?? 'none'}/${l.valueScales?.length ?? 'none'}`);
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
