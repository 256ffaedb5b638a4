/**
 * Packed steps: the tokens of several sequences that share one folded prefix (the questions of a
 * document) run as one step, each reading the prefix where it lies in the cache buffer, once for
 * all of them (shared-prefix attention, as Hydragen and FlashInfer's cascade attention compute it).
 *
 * Each GroupQueryAttention node of the fold graph is wrapped in an `If` on `kvfold.packed`: a fold
 * step runs the op as exported; a packed step runs this attention instead, over the same q, k, v
 * and the same past buffer:
 *
 *   q        [1, S, H·D]   S packed tokens, each of its own sequence, rotated at its own position
 *   buffer   [1, KV, cap, D]   rows [0, prefix) the shared prefix; rows [prefix, past) the
 *                          sequences' own earlier rows; past = total - S (attention_mask)
 *   scores   prefix part   q · bufferᵀ over every row, rows >= prefix masked          [KV, G·S, cap]
 *            own part      q · [buffer[prefix, past) ; k]ᵀ + `kvfold.suffix_bias`   [KV, G·S, R]
 *   softmax over both parts together (their common max, their summed exponentials), then
 *   probabilities · V of each part, summed
 *
 * `kvfold.suffix_bias` [S, R] (R = past - prefix + S) is 0 where a token may read a row (its own
 * sequence's earlier rows, and itself and its sequence's earlier tokens in the step) and the
 * lowest float where it may not. The prefix is read by two batched MatMuls with every token's
 * queries stacked, never copied; only the sequences' own rows (a few per question) are sliced.
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
export const SUFFIX_BIAS = 'kvfold.suffix_bias';

/** A score hidden from a token: float32's lowest finite value (its exponential is 0). */
const MASKED = -3.4028234663852886e38;

export interface PackedInputs {
  readonly packed: string;
  readonly prefixRows: string;
  readonly suffixBias: string;
}

/**
 * Wraps every GroupQueryAttention of `gqaNodes` in an If choosing packed attention or the op.
 * `opset` decides how reductions take their axes. Returns the names of the new inputs.
 */
export function packAttention(graph: GraphProto, gqaNodes: readonly NodeProto[], opset: number, kvHeads: number, headDim: number, attentionMask: string, inputIds: string): PackedInputs {
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

  // Inputs, and what every layer shares: the rows already held and the prefix mask over the buffer.
  graph.input = [
    ...(graph.input ?? []),
    { name: PACKED, type: { tensorType: { elemType: T.BOOL, shape: { dim: [] } } } },
    { name: PREFIX_ROWS, type: { tensorType: { elemType: T.INT64, shape: { dim: [{ dimValue: 1 }] } } } },
    { name: SUFFIX_BIAS, type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimParam: 'packed_tokens' }, { dimParam: 'own_rows' }] } } } },
  ];
  const o = make(outer);
  const one = ints([1]);
  const total = o('Gather', [o('Shape', [attentionMask]), one], [int('axis', 0)]); // [1]
  const seq = o('Gather', [o('Shape', [inputIds]), one], [int('axis', 0)]); // [1]
  const pastRows = o('Sub', [total, seq]); // [1]

  const reduce = (add: ReturnType<typeof make>, op: 'ReduceMax' | 'ReduceSum', x: string) =>
    (op === 'ReduceSum' && opset >= 13) || opset >= 18 ? add(op, [x, ints([-1])], [int('keepdims', 1)]) : add(op, [x], [intsAttr('axes', [-1]), int('keepdims', 1)]);

  const gqaSet = new Set(gqaNodes);
  const replaced = new Map<NodeProto, NodeProto>();
  for (const gqa of gqaNodes) {
    const [q, k, v, pastK, pastV] = gqa.input ?? [];
    const [out] = gqa.output ?? [];
    if (!q || !k || !v || !pastK || !pastV || !out) continue;
    const heads = Number((gqa.attribute ?? []).find((a) => a.name === 'num_heads')?.i ?? 0);
    const group = heads / kvHeads;
    const scaleAttr = (gqa.attribute ?? []).find((a) => a.name === 'scale')?.f;
    const scale = scaleAttr ? Number(scaleAttr) : 1 / Math.sqrt(headDim);

    const body: NodeProto[] = [];
    const b = make(body);
    const qh = b('Reshape', [b('Transpose', [b('Reshape', [q, ints([-1, kvHeads, group, headDim])])], [intsAttr('perm', [1, 2, 0, 3])]), ints([kvHeads, -1, headDim])]); // [KV, G·S, D]
    const kBuf = b('Reshape', [pastK, ints([kvHeads, -1, headDim])]); // [KV, cap, D]
    const vBuf = b('Reshape', [pastV, ints([kvHeads, -1, headDim])]);
    // The prefix part: every buffer row, those at or past `prefix` masked.
    const cap = b('Gather', [b('Shape', [kBuf]), scalarInt(1)], [int('axis', 0)]); // scalar
    const rows = b('Range', [scalarInt(0), cap, scalarInt(1)]);
    const prefixBias = b('Where', [b('Less', [rows, PREFIX_ROWS]), float(0), float(MASKED)]); // [cap]
    const scoresP = b('Add', [b('FusedMatMul', [qh, kBuf], [int('transB', 1), { name: 'alpha', type: A.FLOAT, f: scale }], 'com.microsoft'), prefixBias]);
    // The own part: the sequences' earlier rows, then this step's.
    const own = (buf: string, fresh: string) =>
      b('Concat', [b('Slice', [buf, PREFIX_ROWS, pastRows, one]), b('Transpose', [b('Reshape', [fresh, ints([-1, kvHeads, headDim])])], [intsAttr('perm', [1, 0, 2])])], [int('axis', 1)]); // [KV, R, D]
    const kOwn = own(kBuf, k);
    const vOwn = own(vBuf, v);
    const rawS = b('FusedMatMul', [qh, kOwn], [int('transB', 1), { name: 'alpha', type: A.FLOAT, f: scale }], 'com.microsoft'); // [KV, G·S, R]
    const shapeS = b('Shape', [rawS]);
    const perToken = b('Concat', [ints([kvHeads, group, -1]), b('Gather', [shapeS, ints([2])], [int('axis', 0)])], [int('axis', 0)]); // [KV, G, S, R]
    const scoresS = b('Reshape', [b('Add', [b('Reshape', [rawS, perToken]), SUFFIX_BIAS]), shapeS]);
    // One softmax over both parts.
    const max = b('Max', [reduce(b, 'ReduceMax', scoresP), reduce(b, 'ReduceMax', scoresS)]);
    const expP = b('Exp', [b('Sub', [scoresP, max])]);
    const expS = b('Exp', [b('Sub', [scoresS, max])]);
    const sum = b('Add', [reduce(b, 'ReduceSum', expP), reduce(b, 'ReduceSum', expS)]);
    const mixed = b('Div', [b('Add', [b('MatMul', [expP, vBuf]), b('MatMul', [expS, vOwn])]), sum]); // [KV, G·S, D]
    const packedOut = b('Reshape', [b('Transpose', [b('Reshape', [mixed, ints([kvHeads, group, -1, headDim])])], [intsAttr('perm', [2, 0, 1, 3])]), ints([1, -1, heads * headDim])]);

    // The op as exported, its presents local to its branch (freed with it).
    const opOut = `${out}.kvfold.op`;
    const localOp: NodeProto = { ...gqa, output: [opOut, `${gqa.output?.[1]}.kvfold.local`, `${gqa.output?.[2]}.kvfold.local`] };
    const branch = (name: string, nodes: NodeProto[], result: string): onnxProto.onnx.IGraphProto => ({
      name,
      node: nodes,
      output: [{ name: result, type: { tensorType: { elemType: T.FLOAT } } }],
    });
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
  return { packed: PACKED, prefixRows: PREFIX_ROWS, suffixBias: SUFFIX_BIAS };
}
