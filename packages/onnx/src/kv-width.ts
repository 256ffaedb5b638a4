/**
 * A cache held at another width than the export computes with: the fold graph rewritten so each
 * layer's past comes in at the held width and is widened inside the graph, one layer at a time,
 * and each layer's new rows go out at the held width. A widening reads only graph inputs, so ONNX
 * Runtime would run every layer's at the start of the step and hold them all: each is therefore
 * made to wait for its own layer (`afterRows`), and ONNX Runtime frees it with the layer. So a
 * float16 or int8 cache costs its own bytes and one layer's widened copy, not float32's cache.
 *
 *   float16 <-> float32   a Cast each way
 *   int8                  each head's row holds codes and one float32 scale (fold-core's int8.ts):
 *                         past    Cast(codes) · scales                  [B, kvHeads, past, headDim]
 *                         rows    scale = max |x| / 127 over the row,
 *                                 codes = clip(round(x / scale), ±127)
 *                         the scales come in as `kvfold.past_scales.{i}.key|value` [B, kvHeads, past, 1]
 *                         and go out as `kvfold.rows.{i}.key|value.scales`
 */
import type { KvDtype } from '@kvfold/fold-core';
import onnxProto from 'onnx-proto';
import type { IoNames } from './io-names.ts';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type GraphProto = onnxProto.onnx.IGraphProto;
const T = onnx.TensorProto.DataType;

/** A layer as the fold graph takes and gives it (fold-graph.ts's LayerPlan, as far as the width concerns it). */
export interface WidthLayer {
  readonly past: 'capacity' | 'prefix' | 'sliced';
  readonly rows: { readonly key: string; readonly value: string };
  readonly order: 'heads-first' | 'rows-first';
}

export interface HeldLayer {
  /** Output names of the new rows, at the held width. */
  readonly rows: { readonly key: string; readonly value: string };
  /** int8: output names of the new rows' scales, [B, n, kvHeads, 1] rows-first or [B, kvHeads, n, 1] heads-first. */
  readonly scales: { readonly key: string; readonly value: string } | null;
  /** int8: input names of the past's scales, [B, kvHeads, past, 1]. */
  readonly pastScales: { readonly key: string; readonly value: string } | null;
}

/** Oldest default-domain opset with Round, Clip's bounds as inputs, and the casts this needs. */
export const MIN_WIDTH_OPSET = 13;

const ELEM: Record<KvDtype, number> = { float32: T.FLOAT, float16: T.FLOAT16, int8: T.INT8 };
const INT8_MAX = 127;

/**
 * Rewrites `graph` (whose pasts and rows are `exported`) to hold the cache at `held`. `sliced`
 * pasts are widened after the prelude's Slice (fold-graph.ts), so only the valid rows are widened.
 */
export function holdCacheAt(graph: GraphProto, names: IoNames, layers: readonly WidthLayer[], exported: KvDtype, held: KvDtype, opset: number, kvHeads: number, headDim: number): HeldLayer[] {
  const nodes: NodeProto[] = [];
  const initializers: onnxProto.onnx.ITensorProto[] = [];
  let counter = 0;
  const node = (opType: string, input: string[], attrs: onnxProto.onnx.IAttributeProto[] = [], output = `kvfold.width.${opType.toLowerCase()}_${counter++}`) => {
    nodes.push({ opType, input, output: [output], name: output, attribute: attrs });
    return output;
  };
  const cast = (x: string, to: KvDtype | 'float32') => node('Cast', [x], [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: ELEM[to] }]);
  const scalar = (name: string, value: number) => {
    initializers.push({ name, dims: [], dataType: T.FLOAT, rawData: new Uint8Array(Float32Array.of(value).buffer) });
    return name;
  };
  const ints = (name: string, values: number[]) => {
    initializers.push({ name, dims: [values.length], dataType: T.INT64, rawData: new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer) });
    return name;
  };
  const maxCode = held === 'int8' ? scalar('kvfold.width.int8_max', INT8_MAX) : '';
  const minCode = held === 'int8' ? scalar('kvfold.width.int8_min', -INT8_MAX) : '';
  const tiny = held === 'int8' ? scalar('kvfold.width.tiny', Number.MIN_VALUE) : '';
  const lastAxis = held === 'int8' && opset >= 18 ? ints('kvfold.width.last_axis', [-1]) : '';
  const rowsShape = held === 'int8' ? ints('kvfold.width.rows_shape', [0, 0, kvHeads, headDim]) : '';
  const toExported = (x: string) => (exported === 'float32' ? x : cast(x, exported));

  /**
   * `x`, unchanged (a Reshape to its own shape, which ONNX Runtime does in place), but only once
   * `rows` exists: the layer's new keys or values, computed from the layer's input. A widening of
   * `x` then runs when its layer does instead of at the start of the step.
   */
  const afterRows = (x: string, rows: string) => {
    const first = (t: string) => node('Gather', [node('Shape', [t]), ints(`kvfold.width.zero_index_${counter++}`, [0])], [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 0 }]);
    const zero = node('Sub', [first(rows), first(rows)]); // [1]: 0, computed from the layer's rows
    return node('Reshape', [x, node('Add', [node('Shape', [x]), zero])]);
  };

  /** Every use of `from` by the graph's own nodes now reads `to`. */
  const consumersOf = (name: string) => (graph.node ?? []).filter((n) => (n.input ?? []).includes(name));
  const redirect = (from: string, to: string, users: NodeProto[]) => {
    for (const n of users) n.input = (n.input ?? []).map((x) => (x === from ? to : x));
  };

  const out = layers.map((layer, i): HeldLayer => {
    const heldRows: Record<'key' | 'value', string> = { key: '', value: '' };
    const scales: Record<'key' | 'value', string> = { key: '', value: '' };
    const pastScales: Record<'key' | 'value', string> = { key: '', value: '' };
    for (const kind of ['key', 'value'] as const) {
      const input = (names.pastKeyValues[i] as { key: string; value: string })[kind];
      // The past: the input retyped, widened where the attention reads it.
      const read = layer.past === 'sliced' ? `kvfold.fold.past.${i}.${kind}` : input;
      const users = consumersOf(read).filter((n) => !(layer.past === 'sliced' && n.opType === 'Slice' && n.output?.[0] === read));
      const rowsOfLayer = layer.rows[kind];
      const gated = afterRows(read, rowsOfLayer);
      let wide: string;
      if (held === 'int8') {
        const scalesIn = `kvfold.past_scales.${i}.${kind}`;
        pastScales[kind] = scalesIn;
        graph.input = [...(graph.input ?? []), { name: scalesIn, type: { tensorType: { elemType: T.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: kvHeads }, { dimParam: 'past_sequence_length' }, { dimValue: 1 }] } } } }];
        const scalesRead = layer.past === 'sliced' ? node('Slice', [scalesIn, 'kvfold.fold.starts', 'kvfold.fold.past_length', 'kvfold.fold.axes']) : scalesIn;
        wide = toExported(node('Mul', [cast(gated, 'float32'), scalesRead]));
      } else {
        wide = cast(gated, exported);
      }
      redirect(read, wide, users);
      retype(graph, input, ELEM[held]);

      // The new rows: narrowed to the held width on their way out.
      const rows = layer.rows[kind];
      if (held !== 'int8') {
        heldRows[kind] = cast(rows, held);
        continue;
      }
      const x = exported === 'float32' ? rows : cast(rows, 'float32');
      const perHead = layer.order === 'rows-first' ? node('Reshape', [x, rowsShape]) : x; // [..., headDim]
      const absMax =
        opset >= 18
          ? node('ReduceMax', [node('Abs', [perHead]), lastAxis], [{ name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 1 }])
          : node('ReduceMax', [node('Abs', [perHead])], [
              { name: 'axes', type: onnx.AttributeProto.AttributeType.INTS, ints: [-1] },
              { name: 'keepdims', type: onnx.AttributeProto.AttributeType.INT, i: 1 },
            ]);
      const scale = node('Div', [absMax, maxCode], [], `kvfold.rows.${i}.${kind}.scales`);
      const codes = node('Clip', [node('Round', [node('Div', [perHead, node('Max', [scale, tiny])])]), minCode, maxCode]);
      heldRows[kind] = node('Cast', [codes], [{ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: T.INT8 }], `kvfold.rows.${i}.${kind}.codes`);
      scales[kind] = scale;
    }
    return { rows: heldRows, scales: held === 'int8' ? scales : null, pastScales: held === 'int8' ? pastScales : null };
  });
  graph.node = [...(graph.node ?? []), ...nodes];
  graph.initializer = [...(graph.initializer ?? []), ...initializers];
  return out;
}

/** Changes a graph input's element type. */
function retype(graph: GraphProto, name: string, elemType: number): void {
  const input = (graph.input ?? []).find((v) => v.name === name);
  const t = input?.type?.tensorType;
  if (t) t.elemType = elemType;
}
