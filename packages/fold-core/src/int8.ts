/**
 * An int8 KV cache: every row is kept, stored as int8 with per-channel symmetric scales, and
 * dequantized to float32 for each step.
 *
 * Rows are quantized in groups of `groupRows` consecutive tokens: for each layer, K or V, head and
 * dim channel, scale = max |x| / 127 over the group, q = round(x / scale). Channels are scaled
 * separately because key channels differ in magnitude by orders (RoPE pairs, outlier channels). The
 * newest rows, fewer than a group, stay float32 until the group fills, so short chunks are never
 * quantized over a handful of rows. Memory is about a quarter of float32 plus the scales
 * (4 bytes per channel per group) and the float tail.
 */
import { allocKv, concatRows, type KvLayout, type KvRows, type KvState, sliceRowsOf } from './kv-state.ts';
import type { KvPolicy } from './policy.ts';

/** Rows per quantization group: scales amortise to 1/32 byte per element at 128 rows. */
export const DEFAULT_INT8_GROUP_ROWS = 128;

const QMAX = 127;

export interface Int8Channels {
  readonly data: Int8Array; // [kvHeads, groupRows, headDim]
  readonly scale: Float32Array; // [kvHeads, headDim]
}

export interface Int8Group {
  readonly layers: readonly { key: Int8Channels; value: Int8Channels }[]; // [layers]
}

export interface Int8KvState {
  readonly layout: KvLayout;
  readonly groupRows: number;
  /** Quantized groups, oldest first, `groupRows` rows each. */
  readonly groups: readonly Int8Group[];
  /** The newest rows (fewer than `groupRows`), still float32. */
  readonly tail: KvState;
  readonly length: number;
  readonly nextPosition: number;
  readonly tokensSeen: number;
}

/** Quantizes a float32 [kvHeads, rows, headDim] tensor per (head, dim) channel. */
export function quantizeChannels(x: Float32Array, kvHeads: number, rows: number, headDim: number): Int8Channels {
  const scale = new Float32Array(kvHeads * headDim);
  for (let h = 0; h < kvHeads; h++)
    for (let r = 0; r < rows; r++)
      for (let d = 0; d < headDim; d++) {
        const a = Math.abs(x[(h * rows + r) * headDim + d] as number);
        if (a > (scale[h * headDim + d] as number)) scale[h * headDim + d] = a;
      }
  for (let i = 0; i < scale.length; i++) scale[i] = (scale[i] as number) / QMAX;
  const data = new Int8Array(x.length);
  for (let h = 0; h < kvHeads; h++)
    for (let r = 0; r < rows; r++)
      for (let d = 0; d < headDim; d++) {
        const s = scale[h * headDim + d] as number;
        const i = (h * rows + r) * headDim + d;
        data[i] = s === 0 ? 0 : Math.max(-QMAX, Math.min(QMAX, Math.round((x[i] as number) / s)));
      }
  return { data, scale };
}

/** Writes the dequantized channels into `out` ([kvHeads, outRows, headDim]) at row `at`. */
export function dequantizeInto(q: Int8Channels, kvHeads: number, rows: number, headDim: number, out: Float32Array, outRows: number, at: number): void {
  for (let h = 0; h < kvHeads; h++)
    for (let r = 0; r < rows; r++) {
      const src = (h * rows + r) * headDim;
      const dst = (h * outRows + at + r) * headDim;
      for (let d = 0; d < headDim; d++) out[dst + d] = (q.data[src + d] as number) * (q.scale[h * headDim + d] as number);
    }
}

export function int8Policy(groupRows = DEFAULT_INT8_GROUP_ROWS): KvPolicy<Int8KvState> {
  if (!Number.isInteger(groupRows) || groupRows < 1) throw new RangeError(`int8 group rows must be an integer >= 1, got ${groupRows}`);
  return {
    name: 'int8',
    appendOnly: true,
    init(layout) {
      if (layout.dtype !== 'float32') throw new RangeError('the int8 KV cache quantizes float32 caches only');
      const tail: KvState = { layout, length: 0, nextPosition: 0, tokensSeen: 0, layers: Array.from({ length: layout.layers }, () => ({ key: allocKv('float32', 0), value: allocKv('float32', 0) })) };
      return { layout, groupRows, groups: [], tail, length: 0, nextPosition: 0, tokensSeen: 0 };
    },
    admit(state, rows) {
      const { layout } = state;
      const { kvHeads, headDim } = layout;
      // Tail grows by the new rows; every full group at its front is quantized and leaves it.
      let tailLayers = state.tail.layers.map((l, i) => {
        const add = rows.layers[i] as KvRows['layers'][number];
        return {
          key: concatRows('float32', kvHeads, headDim, l.key, state.tail.length, add.key, rows.rows),
          value: concatRows('float32', kvHeads, headDim, l.value, state.tail.length, add.value, rows.rows),
        };
      });
      let tailRows = state.tail.length + rows.rows;
      const groups = [...state.groups];
      while (tailRows >= groupRows) {
        groups.push({
          layers: tailLayers.map((l) => ({
            key: quantizeChannels(sliceRowsOf(l.key, 'float32', kvHeads, tailRows, headDim, 0, groupRows) as Float32Array, kvHeads, groupRows, headDim),
            value: quantizeChannels(sliceRowsOf(l.value, 'float32', kvHeads, tailRows, headDim, 0, groupRows) as Float32Array, kvHeads, groupRows, headDim),
          })),
        });
        tailLayers = tailLayers.map((l) => ({
          key: sliceRowsOf(l.key, 'float32', kvHeads, tailRows, headDim, groupRows, tailRows),
          value: sliceRowsOf(l.value, 'float32', kvHeads, tailRows, headDim, groupRows, tailRows),
        }));
        tailRows -= groupRows;
      }
      const length = state.length + rows.rows;
      return {
        layout,
        groupRows,
        groups,
        tail: { layout, length: tailRows, nextPosition: length, tokensSeen: length, layers: tailLayers },
        length,
        nextPosition: state.nextPosition + rows.rows,
        tokensSeen: state.tokensSeen + rows.rows,
      };
    },
    view(state) {
      const { layout, length } = state;
      const { kvHeads, headDim } = layout;
      const layers = Array.from({ length: layout.layers }, (_, li) => {
        const key = new Float32Array(kvHeads * length * headDim);
        const value = new Float32Array(kvHeads * length * headDim);
        state.groups.forEach((g, gi) => {
          const l = g.layers[li] as Int8Group['layers'][number];
          dequantizeInto(l.key, kvHeads, groupRows, headDim, key, length, gi * groupRows);
          dequantizeInto(l.value, kvHeads, groupRows, headDim, value, length, gi * groupRows);
        });
        const t = state.tail.layers[li] as KvState['layers'][number];
        const at = state.groups.length * groupRows;
        for (let h = 0; h < kvHeads; h++) {
          key.set((t.key as Float32Array).subarray(h * state.tail.length * headDim, (h + 1) * state.tail.length * headDim), (h * length + at) * headDim);
          value.set((t.value as Float32Array).subarray(h * state.tail.length * headDim, (h + 1) * state.tail.length * headDim), (h * length + at) * headDim);
        }
        return { key, value };
      });
      return { layout, length, nextPosition: state.nextPosition, tokensSeen: state.tokensSeen, layers };
    },
    bytes(state) {
      const { kvHeads, headDim, layers } = state.layout;
      const perGroup = layers * 2 * (kvHeads * groupRows * headDim + kvHeads * headDim * 4);
      return state.groups.length * perGroup + state.tail.length * layers * 2 * kvHeads * headDim * 4;
    },
    length: (s) => s.length,
    restore(kv) {
      // Re-admitting the rows in one go regroups them exactly as the fold did (groups are fixed
      // runs of groupRows tokens); dequantized groups re-quantize to the same int8 values.
      const rows = { rows: kv.length, layers: kv.layers.map((l) => ({ key: l.key, value: l.value })) };
      const s = this.admit(this.init(kv.layout), rows);
      return { ...s, nextPosition: kv.nextPosition, tokensSeen: kv.tokensSeen };
    },
  };
}
