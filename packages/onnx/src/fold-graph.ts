/**
 * The fold graph: a decoder export rewritten so a step costs ONNX Runtime what its new rows cost,
 * not what the cache holds.
 *
 * A standard export returns `present.{i}.*` = past ++ new, the whole cache, every step; through
 * onnxruntime-node each returned tensor is copied into a fresh JavaScript buffer, and a present
 * that is computed but not fetched is still held until the run ends. So the fold runs the same
 * graph — same nodes, same weights — with its outputs changed: the presents stop being outputs
 * (they are computed inside attention and freed with it), and the tensors the presents append
 * (each layer's new keys and values) become outputs instead. The adapter appends those to its own
 * cache, which it feeds back as the past. Per layer the new rows are found where the present is
 * made:
 *
 *   GroupQueryAttention(q, k, v, past, ...)   k, v: [B, n, kvHeads*D], rows first. Its past may
 *                                             be the whole cache buffer (the op reads the valid
 *                                             rows from seqlens_k), fed with no copy.
 *   Concat(past, new, axis=2)                 new: [B, kvHeads, n, D], heads first. The past must be
 *                                             exactly the valid rows: with one KV head that is a
 *                                             prefix of the cache buffer, fed with no copy; with
 *                                             more, a Slice of the buffer is added in front.
 *
 * Anything else (rotary inside GroupQueryAttention, packed QKV, an unknown producer) runs as the
 * standard graph, with the presents fetched: correct, and as costly as any plain loop.
 */
import type { KvDtype, KvLayout, RowOrder } from '@kvfold/fold-core';
import onnxProto from 'onnx-proto';
import type { IoMeta, IoNames } from './io-names.ts';
import { holdCacheAt, MIN_WIDTH_OPSET } from './kv-width.ts';
import { packAttention, type PackedInputs } from './packed-attention.ts';

const { onnx } = onnxProto;
type ModelProto = InstanceType<typeof onnx.ModelProto>;
type NodeProto = onnxProto.onnx.INodeProto;

/** How a layer's past is fed: the whole buffer, its first rows (one KV head), or the buffer sliced in the graph. */
export type PastFeed = 'capacity' | 'prefix' | 'sliced';

export interface LayerPlan {
  readonly past: PastFeed;
  /** Output names of the layer's new key and value rows, at the width the cache is held. */
  readonly rows: { readonly key: string; readonly value: string };
  readonly order: RowOrder;
  /** int8 caches: output names of the new rows' scales (kv-width.ts). */
  readonly scales?: { readonly key: string; readonly value: string } | null;
  /** int8 caches: input names of the past's scales. */
  readonly pastScales?: { readonly key: string; readonly value: string } | null;
}

export type FoldPlan =
  | {
      readonly kind: 'in-place';
      readonly attention: 'GroupQueryAttention' | 'Concat';
      readonly layers: readonly LayerPlan[];
      /** The input that picks the positions whose logits are computed (see `LOGITS_AT`); null when the graph computes them all. */
      readonly logitsAt: string | null;
      /** The width the session holds the cache at: the export's, or the one asked for (kv-width.ts). */
      readonly held: KvDtype;
      /** The inputs of packed steps (packed-attention.ts): several sequences sharing the cache as a prefix, in one step; null where the graph cannot. */
      readonly packed: PackedInputs | null;
    }
  /**
   * For a device session: the presents stay outputs, kept where the session runs and fed back as
   * the next past; the new rows are outputs too, copied to the host for checkpoints.
   */
  | {
      readonly kind: 'resident';
      readonly attention: 'GroupQueryAttention' | 'Concat';
      readonly layers: readonly LayerPlan[];
      readonly presentsOn: 'gpu-buffer' | 'cpu';
      readonly logitsAt: string | null;
    }
  | { readonly kind: 'standard'; readonly reason: string };

/**
 * The fold graph's own input: the positions whose hidden state reaches lm_head, int64 [k]. A fold
 * step feeds its last position (n - 1), so its logits are [1, 1, vocab] whatever the chunk; NLL
 * and exactness checks feed every position; a packed step the last token of each of its sequences.
 */
export const LOGITS_AT = 'kvfold.logits_at';

export interface DeriveOptions {
  /** Keep the presents as outputs (a device session keeps them on the device); pasts are then fed exact. */
  readonly keepPresents?: boolean;
  /** Hold the cache at this width instead of the export's (in place only; kv-width.ts). */
  readonly held?: KvDtype;
  /**
   * Caches one packed step can read (packed-attention.ts): the documents whose steps share a
   * session run. Default 1. Only where the cache is held at the export's width (another width is
   * widened in the graph for the layer's own past only); elsewhere it is 1.
   */
  readonly slots?: number;
}

export interface FoldGraph {
  readonly plan: FoldPlan;
  /** The graph to run: rewritten for 'in-place', the original bytes for 'standard'. */
  readonly model: Uint8Array;
}

/** Oldest default-domain opset whose Slice takes its bounds as inputs. */
const MIN_SLICE_OPSET = 10;
/** Oldest default-domain opset whose Max takes int64. */
const MIN_MAX_INT_OPSET = 12;
/** Oldest default-domain opset with everything packed attention writes (ReduceSum's axes as an input). */
const MIN_PACKED_OPSET = 13;

/** A decoded export and its graph inputs and outputs. */
export interface ReadGraph {
  readonly bytes: Uint8Array;
  readonly model: ModelProto;
  readonly inputs: IoMeta[];
  readonly outputs: IoMeta[];
}

const TYPE_NAMES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16' };

/** Decodes an ONNX file's bytes and lists its graph's inputs (initializers aside) and outputs. */
export function readGraph(bytes: Uint8Array): ReadGraph {
  const model = onnx.ModelProto.decode(bytes);
  const initializers = new Set((model.graph?.initializer ?? []).map((t) => t.name));
  const meta = (v: onnxProto.onnx.IValueInfoProto): IoMeta => {
    const t = v.type?.tensorType;
    if (!t) return { name: v.name ?? '', type: 'non-tensor', shape: [] };
    return {
      name: v.name ?? '',
      type: TYPE_NAMES[t.elemType ?? 0] ?? `type ${t.elemType}`,
      shape: (t.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : d.dimValue !== undefined && d.dimValue !== null ? toNumber(d.dimValue) : '?')),
    };
  };
  return {
    bytes,
    model,
    inputs: (model.graph?.input ?? []).filter((v) => !initializers.has(v.name ?? '')).map(meta),
    outputs: (model.graph?.output ?? []).map(meta),
  };
}

/** Derives the fold graph of a decoder export (it rewrites `read.model`). */
export function deriveFoldGraph(read: ReadGraph, names: IoNames, layout: KvLayout, options: DeriveOptions = {}): FoldGraph {
  const { model, bytes } = read;
  const graph = model.graph;
  if (!graph) return { plan: { kind: 'standard', reason: 'the model has no graph' }, model: bytes };
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const node of graph.node ?? []) {
    for (const out of node.output ?? []) if (out) producer.set(out, node);
    for (const inp of node.input ?? []) if (inp) consumers.set(inp, [...(consumers.get(inp) ?? []), node]);
  }
  const standard = (reason: string): FoldGraph => ({ plan: { kind: 'standard', reason }, model: bytes });

  const dead = new Set<NodeProto>();
  const gqaNodes = new Set<NodeProto>();
  const layers: LayerPlan[] = [];
  let attention: 'GroupQueryAttention' | 'Concat' | null = null;
  for (let i = 0; i < names.presents.length; i++) {
    const found: Partial<Record<'key' | 'value', { rows: string; order: RowOrder; past: PastFeed }>> = {};
    for (const kind of ['key', 'value'] as const) {
      const presentName = (names.presents[i] as { key: string; value: string })[kind];
      const pastName = (names.pastKeyValues[i] as { key: string; value: string })[kind];
      let node = producer.get(presentName);
      while (node?.opType === 'Identity') {
        dead.add(node);
        node = producer.get(node.input?.[0] ?? '');
      }
      const where = `present.${i}.${kind}`;
      if (node?.opType === 'GroupQueryAttention' && node.domain === 'com.microsoft') {
        if (intAttr(node, 'do_rotary', 0) !== 0) return standard(`${where}: GroupQueryAttention rotates the keys inside the op, so its new rows are not a tensor of the graph`);
        const rows = node.input?.[kind === 'key' ? 1 : 2];
        if (!rows) return standard(`${where}: GroupQueryAttention takes packed QKV`);
        if (node.input?.[kind === 'key' ? 3 : 4] !== pastName) return standard(`${where}: GroupQueryAttention does not read ${pastName} directly`);
        const onlyAttention = (consumers.get(pastName) ?? []).every((c) => c.opType === 'GroupQueryAttention');
        found[kind] = { rows, order: 'rows-first', past: onlyAttention ? 'capacity' : 'sliced' };
        attention = 'GroupQueryAttention';
        gqaNodes.add(node);
      } else if (node?.opType === 'Concat') {
        const axis = intAttr(node, 'axis', 0);
        const [first, rows, ...more] = node.input ?? [];
        if ((axis !== 2 && axis !== -2) || more.length || !rows || !first || !comesFrom(first, pastName, producer)) {
          return standard(`${where}: a Concat that is not past ++ new along the sequence axis`);
        }
        found[kind] = { rows, order: 'heads-first', past: layout.kvHeads === 1 ? 'prefix' : 'sliced' };
        attention = 'Concat';
      } else {
        return standard(`${where} comes from ${node ? `a ${node.opType} node` : 'no node'}, not from GroupQueryAttention or Concat`);
      }
    }
    const { key, value } = found as Record<'key' | 'value', { rows: string; order: RowOrder; past: PastFeed }>;
    if (key.order !== value.order || key.past !== value.past) return standard(`layer ${i}: its key and value are made differently`);
    layers.push({ past: key.past, rows: { key: key.rows, value: value.rows }, order: key.order });
  }
  const opset = Number((model.opsetImport ?? []).find((o) => !o.domain)?.version ?? 0);
  const elemType = layout.dtype === 'float32' ? onnx.TensorProto.DataType.FLOAT : onnx.TensorProto.DataType.FLOAT16;
  const rowOutputs = layers.flatMap((l) => [l.rows.key, l.rows.value]).map((name) => ({ name, type: { tensorType: { elemType } } }));
  const constant = (name: string, values: number[], dims: number[]) => {
    graph.initializer = [...(graph.initializer ?? []), { name, dims, dataType: onnx.TensorProto.DataType.INT64, rawData: int64Bytes(values) }];
    return name;
  };
  const logitsAt = gatherBeforeLmHead(graph, names, read.outputs, producer);
  if (options.keepPresents) {
    graph.output = [...(graph.output ?? []), ...rowOutputs];
    const kept = layers.map((l) => ({ ...l, past: 'prefix' as const }));
    return {
      plan: { kind: 'resident', attention: attention as 'GroupQueryAttention' | 'Concat', layers: kept, presentsOn: 'cpu', logitsAt },
      model: onnx.ModelProto.encode(model).finish(),
    };
  }
  if (layers.some((l) => l.past === 'sliced')) {
    if (!names.attentionMask) return standard('the graph has no attention_mask input to tell the valid past rows');
    if (opset < MIN_SLICE_OPSET) return standard(`opset ${opset} is older than ${MIN_SLICE_OPSET}`);
  }
  const held = options.held ?? layout.dtype;
  if (held !== layout.dtype && opset < MIN_WIDTH_OPSET) return standard(`opset ${opset} is older than ${MIN_WIDTH_OPSET}, which a ${held} cache needs`);

  // Presents are no longer outputs (the new rows are, below).
  const presentNames = new Set(names.presents.flatMap((p) => [p.key, p.value]));
  graph.output = (graph.output ?? []).filter((o) => !presentNames.has(o.name ?? ''));
  graph.node = (graph.node ?? []).filter((n) => !dead.has(n));
  // GroupQueryAttention over the whole buffer, with positions given per token, can also run packed
  // steps (packed-attention.ts): its presents then live inside the op's own branch.
  const packable = attention === 'GroupQueryAttention' && names.positionIds !== null && names.attentionMask !== null && layers.every((l) => l.past === 'capacity') && opset >= MIN_PACKED_OPSET;
  if (gqaNodes.size && opset >= MIN_MAX_INT_OPSET && !packable) consumePresents(graph, gqaNodes, constant);

  // Sliced pasts: the input holds the cache buffer; the graph reads its first (total - seq) rows.
  if (layers.some((l) => l.past === 'sliced')) {
    const prelude: NodeProto[] = [];
    const one = constant('kvfold.fold.one', [1], []);
    const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []) =>
      prelude.push({ opType, input, output: [output], name: output, attribute });
    node('Shape', [names.attentionMask as string], 'kvfold.fold.mask_shape');
    node('Gather', ['kvfold.fold.mask_shape', one], 'kvfold.fold.total', [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]);
    node('Shape', [names.inputIds], 'kvfold.fold.ids_shape');
    node('Gather', ['kvfold.fold.ids_shape', one], 'kvfold.fold.seq', [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]);
    node('Sub', ['kvfold.fold.total', 'kvfold.fold.seq'], 'kvfold.fold.past_scalar');
    node('Reshape', ['kvfold.fold.past_scalar', constant('kvfold.fold.shape1', [1], [1])], 'kvfold.fold.past_length');
    const starts = constant('kvfold.fold.starts', [0], [1]);
    const axes = constant('kvfold.fold.axes', [2], [1]);
    const zeroIndex = constant('kvfold.fold.zero_index', [0], [1]);
    const axis0 = [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }];
    layers.forEach((l, i) => {
      if (l.past !== 'sliced') return;
      for (const kind of ['key', 'value'] as const) {
        const input = (names.pastKeyValues[i] as { key: string; value: string })[kind];
        const at = (suffix: string) => `kvfold.fold.past.${i}.${kind}.${suffix}`;
        // A slice reads only graph inputs, so ONNX Runtime would run every layer's at the start of
        // the step and hold every copy: the input is first reshaped to its own shape by a shape
        // that waits for the layer's new rows, so each layer's slice is made when its layer runs.
        node('Shape', [l.rows[kind]], at('rows_shape'));
        node('Gather', [at('rows_shape'), zeroIndex], at('rows_first'), axis0);
        node('Sub', [at('rows_first'), at('rows_first')], at('zero'));
        node('Shape', [input], at('shape'));
        node('Add', [at('shape'), at('zero')], at('same_shape'));
        node('Reshape', [input, at('same_shape')], at('gated'));
        const sliced = `kvfold.fold.past.${i}.${kind}`;
        node('Slice', [at('gated'), starts, 'kvfold.fold.past_length', axes], sliced);
        for (const c of consumers.get(input) ?? []) c.input = (c.input ?? []).map((x) => (x === input ? sliced : x));
      }
    });
    graph.node = [...prelude, ...(graph.node ?? [])];
  }
  // A cache held at another width than the export's: widened in the graph, layer by layer.
  const planLayers: LayerPlan[] =
    held === layout.dtype ? layers : holdCacheAt(graph, names, layers, layout.dtype, held, opset, layout.kvHeads, layout.headDim).map((h, i) => ({ ...(layers[i] as LayerPlan), ...h }));
  const heldType = { float32: onnx.TensorProto.DataType.FLOAT, float16: onnx.TensorProto.DataType.FLOAT16, int8: onnx.TensorProto.DataType.INT8 }[held];
  const output = (name: string, elemType: number) => ({ name, type: { tensorType: { elemType } } });
  graph.output = [
    ...(graph.output ?? []),
    ...planLayers.flatMap((l) => [
      output(l.rows.key, heldType),
      output(l.rows.value, heldType),
      ...(l.scales ? [output(l.scales.key, onnx.TensorProto.DataType.FLOAT), output(l.scales.value, onnx.TensorProto.DataType.FLOAT)] : []),
    ]),
  ];
  const slots = held === layout.dtype ? Math.max(1, options.slots ?? 1) : 1;
  const packed = packable ? packAttention(graph, [...gqaNodes], { opset, kvHeads: layout.kvHeads, headDim: layout.headDim, slots, pasts: names.pastKeyValues }) : null;
  return {
    plan: { kind: 'in-place', attention: attention as 'GroupQueryAttention' | 'Concat', layers: planLayers, logitsAt, held, packed },
    model: onnx.ModelProto.encode(model).finish(),
  };
}

/** lm_head as exporters write it: a MatMul (or its fused and quantized forms) of the hidden state by a weight. */
const LM_HEAD_OPS = new Map([
  ['', new Set(['MatMul'])],
  ['com.microsoft', new Set(['FusedMatMul', 'MatMulNBits'])],
]);

/**
 * Where lm_head reads a [batch, seq, hidden] hidden state and writes `logits` [batch, seq, vocab]
 * directly, gathers the hidden state at the positions LOGITS_AT (a new input) so lm_head runs on
 * those only. Returns the input's name, or null when the logits are not made that way (the graph
 * is left computing every position's).
 */
function gatherBeforeLmHead(graph: onnxProto.onnx.IGraphProto, names: IoNames, outputs: readonly IoMeta[], producer: Map<string, NodeProto>): string | null {
  const head = producer.get(names.logits);
  const hidden = head?.input?.[0];
  const weight = head?.input?.[1];
  if (!head || !hidden || !weight || !LM_HEAD_OPS.get(head.domain ?? '')?.has(head.opType ?? '')) return null;
  if (outputs.find((o) => o.name === names.logits)?.shape.length !== 3) return null;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const weightNode = producer.get(weight);
  const isWeight = initializers.has(weight) || (weightNode?.opType === 'Cast' && initializers.has(weightNode.input?.[0] ?? ''));
  if (!isWeight) return null;
  const gathered = 'kvfold.fold.lm_head_hidden';
  graph.input = [...(graph.input ?? []), { name: LOGITS_AT, type: { tensorType: { elemType: onnx.TensorProto.DataType.INT64, shape: { dim: [{ dimParam: 'logits_positions' }] } } } }];
  const gather: NodeProto = { opType: 'Gather', input: [hidden, LOGITS_AT], output: [gathered], name: gathered, attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }] };
  head.input = [gathered, ...(head.input ?? []).slice(1)];
  graph.node = (graph.node ?? []).flatMap((n) => (n === head ? [gather, n] : [n]));
  return LOGITS_AT;
}

/**
 * ONNX Runtime holds a node output nothing consumes until the run ends, so GroupQueryAttention's
 * presents, no longer outputs, would stay for every layer at once: a second cache. Each layer's
 * attention output is reshaped to its own shape, computed so it depends on the presents' lengths
 * (their difference, 0, is folded in with Max); the presents are then consumed by that layer and
 * freed with it. The Reshape is free and the values unchanged.
 */
function consumePresents(graph: onnxProto.onnx.IGraphProto, nodes: ReadonlySet<NodeProto>, constant: (name: string, values: number[], dims: number[]) => string): void {
  const seqAxis = constant('kvfold.fold.seq_axis', [2], []);
  const inserted = new Map<NodeProto, NodeProto[]>();
  for (const gqa of nodes) {
    const [out, key, value] = gqa.output ?? [];
    if (!out || !key || !value) continue;
    const at = (suffix: string) => `${out}.kvfold.${suffix}`;
    const raw = at('raw');
    (gqa.output as string[])[0] = raw;
    const node = (opType: string, input: string[], output: string, attribute: onnxProto.onnx.IAttributeProto[] = []): NodeProto => ({ opType, input, output: [output], name: output, attribute });
    const axis0 = [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }];
    inserted.set(gqa, [
      node('Shape', [key], at('key_shape')),
      node('Gather', [at('key_shape'), seqAxis], at('key_rows'), axis0),
      node('Shape', [value], at('value_shape')),
      node('Gather', [at('value_shape'), seqAxis], at('value_rows'), axis0),
      node('Sub', [at('key_rows'), at('value_rows')], at('zero')),
      node('Shape', [raw], at('shape')),
      node('Max', [at('shape'), at('zero')], at('same_shape')),
      node('Reshape', [raw, at('same_shape')], out),
    ]);
  }
  graph.node = (graph.node ?? []).flatMap((n) => [n, ...(inserted.get(n) ?? [])]);
}

/** One line for logs and benchmarks. */
export function describePlan(plan: FoldPlan): string {
  if (plan.kind === 'standard') return `standard graph, presents fetched every step (${plan.reason})`;
  const logits = plan.logitsAt ? ', lm_head on the positions asked for' : ', logits of every position';
  if (plan.kind === 'resident') {
    return `resident: ${plan.attention} attention, presents kept ${plan.presentsOn === 'gpu-buffer' ? 'on the device' : 'as returned'} and fed back, new rows copied to the host${logits}`;
  }
  const held = plan.held !== 'float32' ? `, cache held at ${plan.held}` : '';
  const feeds = [...new Set(plan.layers.map((l) => l.past))].join('/');
  return `in place: ${plan.attention} attention, new rows appended to the session's cache, past fed as ${feeds}${held}${logits}`;
}

/** True when `name` is `past` or a Cast of it. */
function comesFrom(name: string, past: string, producer: Map<string, NodeProto>): boolean {
  if (name === past) return true;
  const node = producer.get(name);
  return node?.opType === 'Cast' && node.input?.[0] === past;
}

function intAttr(node: NodeProto, name: string, fallback: number): number {
  const a = node.attribute?.find((x) => x.name === name);
  return !a || a.i === undefined || a.i === null ? fallback : toNumber(a.i);
}

/** protobufjs reads int64 fields as a Long (or a number). */
function toNumber(v: number | { toNumber(): number }): number {
  return typeof v === 'number' ? v : v.toNumber();
}

function int64Bytes(values: number[]): Uint8Array {
  const a = BigInt64Array.from(values, (v) => BigInt(v));
  return new Uint8Array(a.buffer);
}
