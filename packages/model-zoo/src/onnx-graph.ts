/**
 * A small builder for ONNX graphs over the generated protobuf classes (onnx-proto).
 *
 * It names values, adds nodes and initializers, and serialises the model with initializers
 * above a size threshold moved to an external-data file, as `onnx.save(..., save_as_external_data=True)`
 * and optimum exports do. Two ways to get there, with the same bytes:
 *
 *   in memory  `new GraphBuilder(name)`: every initializer is kept until `serialize(opset, options)`
 *              lays out the external data and returns it.
 *   streaming  `new GraphBuilder(name, { external })`: an initializer above the threshold goes to the
 *              `ExternalData` sink as it is added and only its offset is kept, so building a model
 *              holds one weight at a time; `serialize(opset)` returns the graph alone.
 */
import onnxProto from 'onnx-proto';
import { ExternalData, type ExternalPlacement, MemorySink } from './external-data.ts';

export const { onnx } = onnxProto;
type Onnx = typeof onnx;
type TensorProto = InstanceType<Onnx['TensorProto']>;

export const DataType = onnx.TensorProto.DataType;

/** An attribute value: numbers become INT unless listed as floats; arrays become INTS/FLOATS. */
export type AttrValue = number | string | number[] | { floats: number[] } | { float: number } | TensorProto;

/** Dimension of a graph input/output: a fixed size or a symbolic name. */
export type Dim = number | string;

export interface GraphIo {
  readonly name: string;
  readonly elemType: number;
  readonly shape: readonly Dim[];
}

function attribute(name: string, value: AttrValue) {
  const A = onnx.AttributeProto.AttributeType;
  if (typeof value === 'number') return { name, type: A.INT, i: value };
  if (typeof value === 'string') return { name, type: A.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: A.INTS, ints: value };
  if ('floats' in value) return { name, type: A.FLOATS, floats: value.floats };
  if ('float' in value) return { name, type: A.FLOAT, f: value.float };
  return { name, type: A.TENSOR, t: value };
}

function valueInfo(io: GraphIo) {
  return {
    name: io.name,
    type: {
      tensorType: {
        elemType: io.elemType,
        shape: { dim: io.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export interface SerializeOptions {
  /** Initializers of at least this many bytes go to the external-data file. */
  readonly externalThreshold: number;
  /** File name of the external data, relative to the model file. */
  readonly externalName: string;
}

export interface SerializedModel {
  readonly model: Uint8Array;
  /** Concatenated external tensors, or null when none crossed the threshold (always null when streaming: the sink has them). */
  readonly externalData: Uint8Array | null;
}

export interface GraphBuilderOptions {
  /** Streams initializers above its threshold to its sink as they are added. */
  readonly external?: ExternalData;
}

/** An initializer: its bytes inline, or where they lie in the external data. */
interface Initializer {
  readonly name: string;
  readonly dims: number[];
  readonly dataType: number;
  readonly raw?: Uint8Array;
  readonly placement?: ExternalPlacement;
}

export class GraphBuilder {
  private readonly nodes: object[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly inputs: GraphIo[] = [];
  private readonly outputs: GraphIo[] = [];
  private counter = 0;
  /** Operator domains used besides the ONNX one (each gets an opset import at version 1). */
  private readonly domains = new Set<string>();
  private readonly external: ExternalData | undefined;

  constructor(
    private readonly name: string,
    options: GraphBuilderOptions = {},
  ) {
    this.external = options.external;
  }

  input(io: GraphIo): string {
    this.inputs.push(io);
    return io.name;
  }

  /**
   * Declares a graph output. The value is best produced by a node named after the output (`outName`
   * of `node`), so the runtime writes it in place; a different `from` adds an Identity, which copies.
   */
  output(io: GraphIo, from: string = io.name): void {
    if (from !== io.name) this.node('Identity', [from], {}, io.name);
    this.outputs.push(io);
  }

  /** Adds a node (in `domain`, default the ONNX one) and returns the name of its first output. */
  node(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outName?: string, domain = ''): string {
    return this.nodeOutputs(op, inputs, attrs, [outName ?? `${op.toLowerCase()}_${this.counter++}`], domain)[0] as string;
  }

  /**
   * Adds a node with several outputs (`outNames`, '' for an omitted optional output) in `domain`
   * (default: the ONNX domain; e.g. `com.microsoft` for onnxruntime's contrib ops).
   */
  nodeOutputs(op: string, inputs: readonly string[], attrs: Record<string, AttrValue>, outNames: readonly string[], domain = ''): string[] {
    if (domain) this.domains.add(domain);
    this.nodes.push({
      opType: op,
      ...(domain ? { domain } : {}),
      name: `${op}_${this.counter++}`,
      input: [...inputs],
      output: [...outNames],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return [...outNames];
  }

  /**
   * Adds an initializer from its little-endian bytes. Streaming, bytes that reach the threshold
   * are written out now and smaller ones copied, so the caller may reuse `raw` at once; in memory,
   * `raw` is kept as it is until `serialize`.
   */
  tensor(name: string, dims: readonly number[], dataType: number, raw: Uint8Array): string {
    if (!this.external) this.initializers.push({ name, dims: [...dims], dataType, raw });
    else if (raw.byteLength >= this.external.threshold) this.initializers.push({ name, dims: [...dims], dataType, placement: this.external.place(raw) });
    else this.initializers.push({ name, dims: [...dims], dataType, raw: raw.slice() });
    return name;
  }

  /** Adds a float32 initializer. */
  float(name: string, dims: readonly number[], data: Float32Array): string {
    return this.tensor(name, dims, DataType.FLOAT, bytesOf(data));
  }

  /** Adds a float16 initializer from binary16 bits. */
  float16(name: string, dims: readonly number[], bits: Uint16Array): string {
    return this.tensor(name, dims, DataType.FLOAT16, bytesOf(bits));
  }

  /** Adds an int64 initializer (small constants: shapes, axes). */
  int64(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    return this.tensor(name, dims, DataType.INT64, bytesOf(BigInt64Array.from(values, (v) => BigInt(v))));
  }

  /** A scalar or 1-D int64 constant with a generated name. */
  ints(values: readonly number[], scalar = false): string {
    return this.int64(`const_i64_${this.counter++}`, values, scalar ? [] : [values.length]);
  }

  /** A float32 scalar constant with a generated name. */
  scalar(value: number): string {
    return this.float(`const_f32_${this.counter++}`, [], Float32Array.of(value));
  }

  /**
   * Encodes the model. In memory, `options` sets the threshold and file name of the external data,
   * which is returned; streaming, the external data is already in its sink and `options` is not taken.
   */
  serialize(opset: number, options?: SerializeOptions): SerializedModel {
    if (this.external && options) throw new Error('a streaming GraphBuilder has its external data already: serialize(opset) takes no options');
    if (!this.external && !options) throw new Error('serialize(opset, options): options set the external-data threshold and file name');
    const memory = new MemorySink();
    // In memory, the external data is laid out now, in the order the initializers were added: the
    // same order, offsets and bytes a streaming builder writes as it goes.
    const inMemory = options ? new ExternalData(options.externalName, options.externalThreshold, memory) : null;
    const layoutName = (this.external ?? inMemory)?.name;
    const initializer = this.initializers.map((t) => {
      const placement = t.placement ?? (inMemory && t.raw && t.raw.byteLength >= inMemory.threshold ? inMemory.place(t.raw) : undefined);
      if (!placement) return { name: t.name, dims: t.dims, dataType: t.dataType, rawData: t.raw };
      return {
        name: t.name,
        dims: t.dims,
        dataType: t.dataType,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: layoutName as string },
          { key: 'offset', value: String(placement.offset) },
          { key: 'length', value: String(placement.length) },
        ],
      };
    });
    const model = onnx.ModelProto.create({
      irVersion: 8,
      producerName: 'kvfold-model-zoo',
      opsetImport: [{ domain: '', version: opset }, ...[...this.domains].sort().map((domain) => ({ domain, version: 1 }))],
      graph: {
        name: this.name,
        node: this.nodes,
        initializer,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    });
    return { model: onnx.ModelProto.encode(model).finish(), externalData: memory.bytes() };
  }
}

/** Little-endian bytes of a typed array (this code only runs on little-endian hosts, as ONNX requires). */
function bytesOf(a: Float32Array | Uint16Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
