/**
 * How a session feeds a cache's past and takes a step's new rows: one sibling per FoldPlan kind,
 * picked once per session by `createStepPlan` (as onnxruntime-genai's kv_cache.h picks its default,
 * windowed or paged cache), so the session thread never asks which plan it runs.
 *
 *   in-place   the fold graph: the past is the session's buffer (whole, or its first rows as a
 *              view), at the width it is held (an int8 buffer's row scales beside it); the outputs
 *              are each layer's new rows at that width, appended in place
 *   resident   a device session: the past is the presents the last step returned, kept where the
 *              session put them (resident-cache.ts); the new rows come to the host as well
 *   standard   the export as it is: the past is the valid rows (a view, or with several KV heads a
 *              packed copy); the new rows are sliced out of the presents
 */
import type { KvBuffer, KvData, KvLayout } from '@kvfold/fold-core';
import * as ort from 'onnxruntime-node';
import type { FoldPlan, LayerPlan } from './fold-graph.ts';
import type { IoNames } from './io-names.ts';
import type { PackedFeeds } from './protocol.ts';

/** A packed step's slot as the session thread holds it: its cache and what it feeds. */
export interface PackedSlotFeeds {
  readonly buffer: KvBuffer;
  readonly tokens: number;
  readonly packed: PackedFeeds;
}
import { invalidate, keepPresents, pinPresents, residentPast, rewoundTo } from './resident-cache.ts';

type Outputs = ort.InferenceSession.ReturnType;
type Feeds = Record<string, ort.Tensor>;

export interface StepPlan {
  readonly plan: FoldPlan;
  /** Output names a step fetches (the logits first). */
  readonly fetches: readonly string[];
  /** The input that picks the positions lm_head runs on (fold-graph.ts, LOGITS_AT); null: every position's logits come back. */
  readonly logitsAt: string | null;
  /** Outputs the session should keep on the device (onnxruntime-node's preferred output locations). */
  readonly outputLocations?: Record<string, 'gpu-buffer'>;
  /** Before a step of `n` tokens is fed: room the plan needs in the buffer first. */
  prepare(buffer: KvBuffer, n: number): void;
  /** The packed-step inputs of a graph that takes them: a packed step's slots, or an ordinary step's (packed off). */
  modeFeeds(slots?: readonly PackedSlotFeeds[]): Feeds;
  /** Each layer's past, for the next step. */
  pastFeeds(buffer: KvBuffer): Feeds;
  /** Appends the step's `n` new rows from its outputs and advances the buffer; returns bytes copied beyond the buffer's own count. */
  append(buffer: KvBuffer, out: Outputs, n: number): number;
  /** A packed step's slot: appends its tokens' rows [from, from + n) of the step's `total`. */
  appendSlot(buffer: KvBuffer, out: Outputs, from: number, n: number, total: number): void;
  /** The host rows were edited outside a step (loaded, evicted, quantized, released). */
  edited(buffer: KvBuffer): void;
  /** A mark was taken (every question marks the folded cache). */
  marked(buffer: KvBuffer): void;
  /** The buffer was rewound to `length` rows. */
  rewound(buffer: KvBuffer, length: number): void;
}

export function createStepPlan(plan: FoldPlan, names: IoNames, layout: KvLayout): StepPlan {
  switch (plan.kind) {
    case 'in-place':
      return new InPlacePlan(plan, names, layout);
    case 'resident':
      return new ResidentPlan(plan, names, layout);
    case 'standard':
      return new StandardPlan(plan, names, layout);
  }
}

type Pair<T> = { readonly key: T; readonly value: T };

/** Sets layer l's past in `feeds`, and an int8 cache's row scales where the plan takes them. */
function setPast(names: IoNames, feeds: Feeds, l: number, past: Pair<ort.Tensor>, scales?: { names: Pair<string>; tensors: Pair<ort.Tensor> }): void {
  const pkv = names.pastKeyValues[l] as Pair<string>;
  feeds[pkv.key] = past.key;
  feeds[pkv.value] = past.value;
  if (scales) {
    feeds[scales.names.key] = scales.tensors.key;
    feeds[scales.names.value] = scales.tensors.value;
  }
}

/**
 * Writes each layer's new rows (outputs named by `layers`, with an int8 cache's scales) and
 * advances the buffer: the step's rows [from, from + n) of its `total` (a packed step's slot), or
 * all of them.
 */
function appendRows(buffer: KvBuffer, out: Outputs, n: number, layers: readonly LayerPlan[], range?: { from: number; total: number }): void {
  buffer.ensureRoom(n);
  const { kvHeads, headDim } = buffer.layout;
  const pick = <T extends KvData>(data: T, order: LayerPlan['order'], width: number): T => (range ? tokenRows(data, order, kvHeads, width, range.total, range.from, n) : data);
  for (const [l, lp] of layers.entries()) {
    const scales = lp.scales ? { key: pick(out[lp.scales.key]?.data as Float32Array, lp.order, 1), value: pick(out[lp.scales.value]?.data as Float32Array, lp.order, 1) } : undefined;
    buffer.writeLayer(l, pick(out[lp.rows.key]?.data as KvData, lp.order, headDim), pick(out[lp.rows.value]?.data as KvData, lp.order, headDim), n, lp.order, scales);
  }
  buffer.advance(n);
}

/** Rows [from, from + n) of a step's `total` new rows, in the same order (a view where they are contiguous). */
function tokenRows<T extends KvData>(data: T, order: LayerPlan['order'], heads: number, width: number, total: number, from: number, n: number): T {
  if (order === 'rows-first') return data.subarray(from * heads * width, (from + n) * heads * width) as T;
  const out = new (data.constructor as new (length: number) => T)(heads * n * width);
  for (let h = 0; h < heads; h++) out.set(data.subarray((h * total + from) * width, (h * total + from + n) * width) as never, h * n * width);
  return out;
}

/**
 * The valid rows of every layer as [1, kvHeads, past, D] (int8 scales [1, kvHeads, past, 1]): views
 * of the buffer where they are contiguous (one KV head, or none held yet), else a packed copy
 * (standard graphs with several KV heads).
 */
function hostPast(names: IoNames, buffer: KvBuffer, layout: KvLayout, layers?: readonly LayerPlan[]): Feeds {
  const { kvHeads, headDim, dtype } = layout;
  const past = buffer.length;
  const dims = [1, kvHeads, past, headDim];
  const scaleDims = [1, kvHeads, past, 1];
  const feeds: Feeds = {};
  const set = (l: number, key: KvData, value: KvData, keyScales?: Float32Array, valueScales?: Float32Array) => {
    const scaleNames = layers?.[l]?.pastScales;
    const scales =
      scaleNames && keyScales && valueScales ? { names: scaleNames, tensors: { key: new ort.Tensor('float32', keyScales, scaleDims), value: new ort.Tensor('float32', valueScales, scaleDims) } } : undefined;
    setPast(names, feeds, l, { key: new ort.Tensor(dtype, key, dims), value: new ort.Tensor(dtype, value, dims) }, scales);
  };
  if (kvHeads === 1 || past === 0) {
    for (let l = 0; l < layout.layers; l++) {
      const { key, value, keyScales, valueScales } = buffer.layer(l);
      set(l, key.subarray(0, past * headDim), value.subarray(0, past * headDim), keyScales?.subarray(0, past), valueScales?.subarray(0, past));
    }
  } else {
    for (const [l, r] of buffer.read(0, past).layers.entries()) set(l, r.key, r.value, r.keyScales, r.valueScales);
  }
  return feeds;
}

class InPlacePlan implements StepPlan {
  readonly fetches: readonly string[];
  readonly logitsAt: string | null;
  /** Tensors over each buffer's arrays (and an int8 buffer's scales), for pasts fed as the whole buffer; rebuilt when the buffer grows. */
  readonly #tensors = new WeakMap<KvBuffer, { generation: number; feeds: Feeds }>();
  readonly #wholeBuffer: boolean;

  constructor(
    readonly plan: Extract<FoldPlan, { kind: 'in-place' }>,
    private readonly names: IoNames,
    private readonly layoutOf: KvLayout,
  ) {
    this.fetches = [names.logits, ...plan.layers.flatMap((l) => [l.rows.key, l.rows.value, ...(l.scales ? [l.scales.key, l.scales.value] : [])])];
    this.logitsAt = plan.logitsAt;
    this.#wholeBuffer = plan.layers.every((l) => l.past !== 'prefix');
  }

  prepare(buffer: KvBuffer, n: number): void {
    // The whole buffer is the past: it must already hold room for the rows this step appends.
    buffer.ensureRoom(n);
  }

  modeFeeds(slots?: readonly PackedSlotFeeds[]): Feeds {
    const inputs = this.plan.packed;
    if (!inputs) {
      if (slots) throw new RangeError('this session cannot run packed steps (its graph has no packed attention)');
      return {};
    }
    if (slots && (slots.length === 0 || slots.length > inputs.slots)) throw new RangeError(`a packed step takes 1 to ${inputs.slots} caches, got ${slots.length}`);
    const m = inputs.slots;
    const int64 = (values: number[]) => new ort.Tensor('int64', BigInt64Array.from(values, (v) => BigInt(v)), [values.length]);
    const offsets = [0];
    for (let s = 0; s < m; s++) offsets.push((offsets[s] as number) + (slots?.[s]?.tokens ?? 0));
    const feeds: Feeds = {
      [inputs.packed]: new ort.Tensor('bool', Uint8Array.of(slots ? 1 : 0), []),
      [inputs.prefixRows]: int64(Array.from({ length: m }, (_, s) => slots?.[s]?.packed.prefixRows ?? 0)),
      [inputs.pastRows]: int64(Array.from({ length: m }, (_, s) => slots?.[s]?.buffer.length ?? 0)),
      [inputs.slotTokens]: int64(offsets),
    };
    for (let s = 0; s < m; s++) {
      const slot = slots?.[s];
      const own = slot ? slot.buffer.length - slot.packed.prefixRows : 0;
      feeds[inputs.suffixBias[s] as string] = slot ? new ort.Tensor('float32', slot.packed.bias, [slot.tokens, own + slot.tokens]) : new ort.Tensor('float32', new Float32Array(1), [1, 1]);
      if (s === 0) continue;
      // Slot s reads its cache's buffer under its own names; an empty slot a one-row stand-in (never read).
      const past = slot ? this.#bufferFeeds(slot.buffer) : this.#standIn();
      for (const [l, names] of (inputs.slotPasts[s - 1] ?? []).entries()) {
        const own = this.names.pastKeyValues[l] as Pair<string>;
        feeds[names.key] = past[own.key] as ort.Tensor;
        feeds[names.value] = past[own.value] as ort.Tensor;
      }
    }
    return feeds;
  }

  #standInFeeds: Feeds | null = null;
  /** A one-row zero past for every layer, for the slots a step leaves empty. */
  #standIn(): Feeds {
    if (this.#standInFeeds) return this.#standInFeeds;
    const { kvHeads, headDim } = this.layoutOf;
    const dtype = this.layoutOf.dtype;
    const zeros = () => new ort.Tensor(dtype, dtype === 'float32' ? new Float32Array(kvHeads * headDim) : new Uint16Array(kvHeads * headDim), [1, kvHeads, 1, headDim]);
    const feeds: Feeds = {};
    for (const p of this.names.pastKeyValues) {
      feeds[p.key] = zeros();
      feeds[p.value] = zeros();
    }
    this.#standInFeeds = feeds;
    return feeds;
  }

  pastFeeds(buffer: KvBuffer): Feeds {
    return this.#wholeBuffer ? this.#bufferFeeds(buffer) : hostPast(this.names, buffer, buffer.layout, this.plan.layers);
  }

  append(buffer: KvBuffer, out: Outputs, n: number): number {
    appendRows(buffer, out, n, this.plan.layers);
    return 0;
  }

  appendSlot(buffer: KvBuffer, out: Outputs, from: number, n: number, total: number): void {
    appendRows(buffer, out, n, this.plan.layers, from === 0 && n === total ? undefined : { from, total });
  }

  edited(): void {}
  marked(): void {}
  rewound(): void {}

  #bufferFeeds(buffer: KvBuffer): Feeds {
    const kept = this.#tensors.get(buffer);
    if (kept && kept.generation === buffer.generation) return kept.feeds;
    const { layers, kvHeads, headDim, dtype } = buffer.layout;
    const dims = [1, kvHeads, buffer.capacity, headDim];
    const scaleDims = [1, kvHeads, buffer.capacity, 1];
    const feeds: Feeds = {};
    for (let l = 0; l < layers; l++) {
      const { key, value, keyScales, valueScales } = buffer.layer(l);
      const scaleNames = this.plan.layers[l]?.pastScales;
      const scales =
        scaleNames && keyScales && valueScales
          ? { names: scaleNames, tensors: { key: new ort.Tensor('float32', keyScales, scaleDims), value: new ort.Tensor('float32', valueScales, scaleDims) } }
          : undefined;
      setPast(this.names, feeds, l, { key: new ort.Tensor(dtype, key, dims), value: new ort.Tensor(dtype, value, dims) }, scales);
    }
    this.#tensors.set(buffer, { generation: buffer.generation, feeds });
    return feeds;
  }
}

class ResidentPlan implements StepPlan {
  readonly fetches: readonly string[];
  readonly logitsAt: string | null;
  readonly outputLocations?: Record<string, 'gpu-buffer'>;
  readonly #presentNames: readonly string[];

  constructor(
    readonly plan: Extract<FoldPlan, { kind: 'resident' }>,
    private readonly names: IoNames,
    private readonly layout: KvLayout,
  ) {
    this.#presentNames = names.presents.flatMap((p) => [p.key, p.value]);
    this.fetches = [names.logits, ...plan.layers.flatMap((l) => [l.rows.key, l.rows.value]), ...this.#presentNames];
    this.logitsAt = plan.logitsAt;
    if (plan.presentsOn === 'gpu-buffer') this.outputLocations = Object.fromEntries(this.#presentNames.map((n) => [n, 'gpu-buffer' as const]));
  }

  prepare(): void {}

  modeFeeds(): Feeds {
    return {};
  }

  pastFeeds(buffer: KvBuffer): Feeds {
    const resident = residentPast(buffer);
    if (!resident) return hostPast(this.names, buffer, this.layout);
    const feeds: Feeds = {};
    for (const [l, t] of resident.entries()) setPast(this.names, feeds, l, t);
    return feeds;
  }

  append(buffer: KvBuffer, out: Outputs, n: number): number {
    appendRows(buffer, out, n, this.plan.layers);
    keepPresents(
      buffer,
      this.names.presents.map((p) => ({ key: out[p.key] as ort.Tensor, value: out[p.value] as ort.Tensor })),
    );
    return 0;
  }

  appendSlot(): void {
    throw new RangeError('this session cannot run packed steps');
  }

  edited(buffer: KvBuffer): void {
    invalidate(buffer);
  }
  marked(buffer: KvBuffer): void {
    pinPresents(buffer);
  }
  rewound(buffer: KvBuffer, length: number): void {
    rewoundTo(buffer, length);
  }
}

class StandardPlan implements StepPlan {
  readonly fetches: readonly string[];
  readonly logitsAt = null;

  constructor(
    readonly plan: Extract<FoldPlan, { kind: 'standard' }>,
    private readonly names: IoNames,
    private readonly layout: KvLayout,
  ) {
    this.fetches = [names.logits, ...names.presents.flatMap((p) => [p.key, p.value])];
  }

  prepare(): void {}

  modeFeeds(): Feeds {
    return {};
  }

  pastFeeds(buffer: KvBuffer): Feeds {
    return hostPast(this.names, buffer, this.layout);
  }

  append(buffer: KvBuffer, out: Outputs, n: number): number {
    const { kvHeads, headDim } = this.layout;
    const past = buffer.length;
    buffer.ensureRoom(n);
    this.names.presents.forEach((p, l) => {
      const rows = (name: string) => newRows(out[name]?.data as Float32Array | Uint16Array, kvHeads, past, past + n, headDim);
      buffer.writeLayer(l, rows(p.key), rows(p.value), n, 'heads-first');
    });
    buffer.advance(n);
    return n * buffer.rowBytes; // the rows sliced out of the presents before they are written
  }

  appendSlot(): void {
    throw new RangeError('this session cannot run packed steps');
  }

  edited(): void {}
  marked(): void {}
  rewound(): void {}
}

/** Rows [from, to) of a [1, heads, to, dim] present as a fresh [heads, to - from, dim] array. */
function newRows(data: Float32Array | Uint16Array, heads: number, from: number, to: number, dim: number): KvData {
  const n = to - from;
  const out = data instanceof Float32Array ? new Float32Array(heads * n * dim) : new Uint16Array(heads * n * dim);
  for (let h = 0; h < heads; h++) {
    const src = (h * to + from) * dim;
    out.set(data.subarray(src, src + n * dim), h * n * dim);
  }
  return out;
}
