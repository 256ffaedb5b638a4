/**
 * Packed steps: the tokens of several sequences run as one step. Sequences that share one folded
 * prefix (the questions of a document) read it where it lies in the cache buffer, once for all of
 * them (shared-prefix attention, as Hydragen and FlashInfer's cascade attention compute it); and
 * the caches of several documents (slots) take part in one step, each read where it lies in its
 * own buffer, so the weights are read once for every document's tokens.
 *
 * Each GroupQueryAttention node of the fold graph is wrapped in an `If` on `kvfold.packed`: a fold
 * step runs the op as exported; a packed step runs this attention instead, over the same q, k, v:
 *
 *   q          [1, S, H·D]   S packed tokens, slot by slot (`kvfold.slot_tokens` [M + 1] gives
 *                            each slot's range), each rotated at its own position
 *   slot s     its buffer [1, KV, cap, D] (slot 0: the layer's past input; slot s > 0:
 *              `kvfold.slot.{s}.past.{l}.key|value`); rows [0, prefix_s) its shared prefix, rows
 *              [prefix_s, past_s) its sequences' own earlier rows (`kvfold.prefix_rows` and
 *              `kvfold.past_rows`, [M] each)
 *   scores     prefix part   q_s · buffer_sᵀ over every row, rows >= prefix_s masked   [KV, G·S_s, cap]
 *              own part      q_s · [buffer_s[prefix_s, past_s) ; k_s]ᵀ + bias_s       [KV, G·S_s, R_s]
 *   softmax over both parts together (their common max, their summed exponentials), then
 *   probabilities · V of each part, summed; the slots' outputs, concatenated, are the layer's.
 *
 * `bias_s` [S_s, R_s] (`kvfold.suffix_bias` for slot 0, `kvfold.suffix_bias.{s}` after it; R_s =
 * past_s - prefix_s + S_s) is 0 where a token may read a row (its own sequence's earlier rows, and
 * itself and its sequence's earlier tokens in the step) and the lowest float where it may not. A
 * slot without tokens is skipped (an `If` of its own). The prefix is read by two batched MatMuls
 * with every token's queries stacked, never copied; only the sequences' own rows are sliced.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type GraphProto = onnxProto.onnx.IGraphProto;
const A = onnx.AttributeProto.AttributeType;
const T = onnx.TensorProto.DataType;

/** The packed step's inputs. */
export const PACKED = 'kvfold.packed';
export const PREFIX_ROWS = 'kvfold.prefix_rows';
export const PAST_ROWS = 'kvfold.past_rows';
export const SLOT_TOKENS = 'kvfold.slot_tokens';
export const SUFFIX_BIAS = 'kvfold.suffix_bias';

/** A score hidden from a token: float32's lowest finite value (its exponential is 0). */
const MASKED = -3.4028234663852886e38;

type Pair = { readonly key: string; readonly value: string };

export interface PackedInputs {
  readonly packed: string;
  /** int64 [slots]: each slot's shared prefix rows. */
  readonly prefixRows: string;
  /** int64 [slots]: each slot's rows held before the step. */
  readonly pastRows: string;
  /** int64 [slots + 1]: where each slot's tokens start in the step, and the end. */
  readonly slotTokens: string;
  /** float32 [S_s, R_s] of each slot. */
  readonly suffixBias: readonly string[];
  /** Cache buffers a step can read: slot 0 reads the layers' own past inputs. */
  readonly slots: number;
  /** The past inputs of slots 1.. by layer (`slotPasts[s - 1][l]`). */
  readonly slotPasts: readonly (readonly Pair[])[];
}

/**
 * Wraps every GroupQueryAttention of `gqaNodes` in an If choosing packed attention or the op.
 * `pasts` are the layers' past inputs (each GroupQueryAttention reads one pair of them, as a graph
 * input, when `slots` > 1); `opset` decides how reductions take their axes. Returns the names of
 * the new inputs.
 */
export function packAttention(graph: GraphProto, gqaNodes: readonly NodeProto[], options: { opset: number; kvHeads: number; headDim: number; slots: number; pasts: readonly Pair[] }): PackedInputs {
  const { opset, kvHeads, headDim, slots, pasts } = options;
  let counter = 0;
  const outer: NodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  const ints = (values: number[]) => {
    const name = `kvfold.packed.const_${counter++}`;
    initializers.push({ name, dims: [values.length], dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer) });
    return name;
  };
  const scalarInt = (value: number) => {
    const name = `kvfold.packed.const_${counter++}`;
    initializers.push({ name, dims: [], dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.of(BigInt(value)).buffer) });
    return name;
  };
  const float = (value: number) => {
    const name = `kvfold.packed.const_${counter++}`;
    initializers.push({ name, dims: [], dataType: T.FLOAT, rawData: new Uint8Array(Float32Array.of(value).buffer) });
    return name;
  };
  const make =
    (into: NodeProto[]) =>
    (opType: string, input: string[], attrs: onnxProto.onnx.IAttributeProto[] = [], domain = ''): string => {
      const output = `kvfold.packed.${opType.toLowerCase()}_${counter++}`;
      into.push({ opType, input, output: [output], name: output, attribute: attrs, ...(domain ? { domain } : {}) });
      return output;
    };
  const int = (name: string, i: number) => ({ name, type: A.INT, i });
  const intsAttr = (name: string, values: number[]) => ({ name, type: A.INTS, ints: values });
  const tensorInput = (name: string, elemType: number, dim: onnxProto.onnx.TensorShapeProto.IDimension[]) => ({ name, type: { tensorType: { elemType, shape: { dim } } } });
  const elemOf = (name: string) => (graph.input ?? []).find((v) => v.name === name)?.type?.tensorType?.elemType ?? T.FLOAT;

  // Inputs, and what every layer shares: each slot's token range and rows, and whether it has tokens.
  const suffixBias = Array.from({ length: slots }, (_, s) => (s === 0 ? SUFFIX_BIAS : `${SUFFIX_BIAS}.${s}`));
  const slotPasts = Array.from({ length: slots - 1 }, (_, i) =>
    pasts.map((_p, l) => ({ key: `kvfold.slot.${i + 1}.past.${l}.key`, value: `kvfold.slot.${i + 1}.past.${l}.value` })),
  );
  const pastDims = [{ dimValue: 1 }, { dimValue: kvHeads }, { dimParam: 'slot_capacity' }, { dimValue: headDim }];
  graph.input = [
    ...(graph.input ?? []),
    tensorInput(PACKED, T.BOOL, []),
    tensorInput(PREFIX_ROWS, T.INT64, [{ dimValue: slots }]),
    tensorInput(PAST_ROWS, T.INT64, [{ dimValue: slots }]),
    tensorInput(SLOT_TOKENS, T.INT64, [{ dimValue: slots + 1 }]),
    ...suffixBias.map((name) => tensorInput(name, T.FLOAT, [{ dimParam: 'packed_tokens' }, { dimParam: 'own_rows' }])),
    ...slotPasts.flatMap((layers) => layers.flatMap((p, l) => [tensorInput(p.key, elemOf((pasts[l] as Pair).key), pastDims), tensorInput(p.value, elemOf((pasts[l] as Pair).value), pastDims)])),
  ];
  const o = make(outer);
  const at = (input: string, s: number) => o('Slice', [input, ints([s]), ints([s + 1])]); // [1]
  const slot = Array.from({ length: slots }, (_, s) => {
    const start = at(SLOT_TOKENS, s);
    const end = at(SLOT_TOKENS, s + 1);
    return { start, end, prefix: at(PREFIX_ROWS, s), past: at(PAST_ROWS, s), has: o('Reshape', [o('Less', [start, end]), ints([])]) };
  });
  const tokenAxis = ints([1]);

  const reduce = (add: ReturnType<typeof make>, op: 'ReduceMax' | 'ReduceSum', x: string) =>
    (op === 'ReduceSum' && opset >= 13) || opset >= 18 ? add(op, [x, ints([-1])], [int('keepdims', 1)]) : add(op, [x], [intsAttr('axes', [-1]), int('keepdims', 1)]);

  /** One slot's attention: its tokens' q, k, v [1, S_s, ·] over its buffer; [1, S_s, H·D]. */
  const attend = (b: ReturnType<typeof make>, heads: number, scale: number, x: { q: string; k: string; v: string; pastK: string; pastV: string; prefix: string; past: string; bias: string }) => {
    const group = heads / kvHeads;
    const one = ints([1]);
    const qh = b('Reshape', [b('Transpose', [b('Reshape', [x.q, ints([-1, kvHeads, group, headDim])])], [intsAttr('perm', [1, 2, 0, 3])]), ints([kvHeads, -1, headDim])]); // [KV, G·S, D]
    const kBuf = b('Reshape', [x.pastK, ints([kvHeads, -1, headDim])]); // [KV, cap, D]
    const vBuf = b('Reshape', [x.pastV, ints([kvHeads, -1, headDim])]);
    // The prefix part: every buffer row, those at or past `prefix` masked.
    const cap = b('Gather', [b('Shape', [kBuf]), scalarInt(1)], [int('axis', 0)]); // scalar
    const rows = b('Range', [scalarInt(0), cap, scalarInt(1)]);
    const prefixBias = b('Where', [b('Less', [rows, x.prefix]), float(0), float(MASKED)]); // [cap]
    const scoresP = b('Add', [b('FusedMatMul', [qh, kBuf], [int('transB', 1), { name: 'alpha', type: A.FLOAT, f: scale }], 'com.microsoft'), prefixBias]);
    // The own part: the sequences' earlier rows, then this step's.
    const own = (buf: string, fresh: string) =>
      b('Concat', [b('Slice', [buf, x.prefix, x.past, one]), b('Transpose', [b('Reshape', [fresh, ints([-1, kvHeads, headDim])])], [intsAttr('perm', [1, 0, 2])])], [int('axis', 1)]); // [KV, R, D]
    const kOwn = own(kBuf, x.k);
    const vOwn = own(vBuf, x.v);
    const rawS = b('FusedMatMul', [qh, kOwn], [int('transB', 1), { name: 'alpha', type: A.FLOAT, f: scale }], 'com.microsoft'); // [KV, G·S, R]
    const shapeS = b('Shape', [rawS]);
    const perToken = b('Concat', [ints([kvHeads, group, -1]), b('Gather', [shapeS, ints([2])], [int('axis', 0)])], [int('axis', 0)]); // [KV, G, S, R]
    const scoresS = b('Reshape', [b('Add', [b('Reshape', [rawS, perToken]), x.bias]), shapeS]);
    // One softmax over both parts.
    const max = b('Max', [reduce(b, 'ReduceMax', scoresP), reduce(b, 'ReduceMax', scoresS)]);
    const expP = b('Exp', [b('Sub', [scoresP, max])]);
    const expS = b('Exp', [b('Sub', [scoresS, max])]);
    const sum = b('Add', [reduce(b, 'ReduceSum', expP), reduce(b, 'ReduceSum', expS)]);
    const mixed = b('Div', [b('Add', [b('MatMul', [expP, vBuf]), b('MatMul', [expS, vOwn])]), sum]); // [KV, G·S, D]
    return b('Reshape', [b('Transpose', [b('Reshape', [mixed, ints([kvHeads, group, -1, headDim])])], [intsAttr('perm', [2, 0, 1, 3])]), ints([1, -1, heads * headDim])]);
  };
  const branch = (name: string, nodes: NodeProto[], result: string): onnxProto.onnx.IGraphProto => ({
    name,
    node: nodes,
    output: [{ name: result, type: { tensorType: { elemType: T.FLOAT } } }],
  });

  const gqaSet = new Set(gqaNodes);
  const replaced = new Map<NodeProto, NodeProto>();
  for (const gqa of gqaNodes) {
    const [q, k, v, pastK, pastV] = gqa.input ?? [];
    const [out] = gqa.output ?? [];
    if (!q || !k || !v || !pastK || !pastV || !out) continue;
    const layer = pasts.findIndex((p) => p.key === pastK && p.value === pastV);
    if (slots > 1 && layer < 0) throw new RangeError(`${out}: a GroupQueryAttention that does not read a past input of the graph cannot take other slots' caches`);
    const heads = Number((gqa.attribute ?? []).find((a) => a.name === 'num_heads')?.i ?? 0);
    const scaleAttr = (gqa.attribute ?? []).find((a) => a.name === 'scale')?.f;
    const scale = scaleAttr ? Number(scaleAttr) : 1 / Math.sqrt(headDim);

    const body: NodeProto[] = [];
    const b = make(body);
    const outputs = slot.map((sl, s) => {
      const pick = (x: string) => b('Slice', [x, sl.start, sl.end, tokenAxis]);
      const past = s === 0 ? { key: pastK, value: pastV } : (slotPasts[s - 1]?.[layer] as Pair);
      const parts = { q: pick(q), k: pick(k), v: pick(v), pastK: past.key, pastV: past.value, prefix: sl.prefix, past: sl.past, bias: suffixBias[s] as string };
      if (s === 0) return attend(b, heads, scale, parts);
      // A slot without tokens is skipped: its output is its (empty) slice of q.
      const inner: NodeProto[] = [];
      const result = attend(make(inner), heads, scale, parts);
      const empty: NodeProto[] = [];
      const none = make(empty)('Identity', [parts.q]);
      return b('If', [sl.has], [
        { name: 'then_branch', type: A.GRAPH, g: branch(`${out}.slot_${s}`, inner, result) },
        { name: 'else_branch', type: A.GRAPH, g: branch(`${out}.slot_${s}.empty`, empty, none) },
      ]);
    });
    const packedOut = outputs.length === 1 ? (outputs[0] as string) : b('Concat', outputs, [int('axis', 1)]);

    // The op as exported, its presents local to its branch (freed with it).
    const opOut = `${out}.kvfold.op`;
    const localOp: NodeProto = { ...gqa, output: [opOut, `${gqa.output?.[1]}.kvfold.local`, `${gqa.output?.[2]}.kvfold.local`] };
    replaced.set(gqa, {
      opType: 'If',
      input: [PACKED],
      output: [out],
      name: `${out}.kvfold.if`,
      attribute: [
        { name: 'then_branch', type: A.GRAPH, g: branch(`${out}.packed`, body, packedOut) },
        { name: 'else_branch', type: A.GRAPH, g: branch(`${out}.op`, [localOp], opOut) },
      ],
    });
  }
  graph.node = [...outer, ...(graph.node ?? []).map((n) => (gqaSet.has(n) ? (replaced.get(n) ?? n) : n))];
  graph.initializer = [...(graph.initializer ?? []), ...initializers];
  return { packed: PACKED, prefixRows: PREFIX_ROWS, pastRows: PAST_ROWS, slotTokens: SLOT_TOKENS, suffixBias, slots, slotPasts };
}
