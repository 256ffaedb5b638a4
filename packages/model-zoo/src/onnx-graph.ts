/**
 * A small builder for ONNX graphs over the generated protobuf classes (onnx-proto).
 *
 * It names values, adds nodes and initializers, and serialises the model with initializers
 * above a size threshold moved to an external-data file, as `onnx.save(..., save_as_external_data=True)`
 * and optimum exports do.
 */
import onnxProto from 'onnx-proto';

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
  /** Concatenated external tensors, or null when none crossed the threshold. */
  readonly externalData: Uint8Array | null;
}

/** Byte alignment of tensors in the external-data file (as onnx's own writer uses for mmap). */
const EXTERNAL_ALIGNMENT = 4096;

export class GraphBuilder {
  private readonly nodes: object[] = [];
  private readonly initializers: { name: string; dims: number[]; dataType: number; raw: Uint8Array }[] = [];
  private readonly inputs: GraphIo[] = [];
  private readonly outputs: GraphIo[] = [];
  private counter = 0;
  /** Operator domains used besides the ONNX one (each gets an opset import at version 1). */
  private readonly domains = new Set<string>();

  constructor(private readonly name: string) {}

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

  /** Adds a node and returns the name of its first output. */
  node(op: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, outName?: string): string {
    return this.nodeOutputs(op, inputs, attrs, [outName ?? `${op.toLowerCase()}_${this.counter++}`])[0] as string;
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

  /** Adds a float32 initializer. */
  float(name: string, dims: readonly number[], data: Float32Array): string {
    this.initializers.push({ name, dims: [...dims], dataType: DataType.FLOAT, raw: bytesOf(data) });
    return name;
  }

  /** Adds an int64 initializer (small constants: shapes, axes). */
  int64(name: string, values: readonly number[], dims: readonly number[] = [values.length]): string {
    this.initializers.push({
      name,
      dims: [...dims],
      dataType: DataType.INT64,
      raw: bytesOf(BigInt64Array.from(values, (v) => BigInt(v))),
    });
    return name;
  }

  /** A scalar or 1-D int64 constant with a generated name. */
  ints(values: readonly number[], scalar = false): string {
    return this.int64(`const_i64_${this.counter++}`, values, scalar ? [] : [values.length]);
  }

  /** A float32 scalar constant with a generated name. */
  scalar(value: number): string {
    return this.float(`const_f32_${this.counter++}`, [], Float32Array.of(value));
  }

  serialize(opset: number, options: SerializeOptions): SerializedModel {
    const chunks: Uint8Array[] = [];
    let offset = 0;
    const initializer = this.initializers.map((t) => {
      if (t.raw.byteLength < options.externalThreshold) {
        return { name: t.name, dims: t.dims, dataType: t.dataType, rawData: t.raw };
      }
      const pad = (EXTERNAL_ALIGNMENT - (offset % EXTERNAL_ALIGNMENT)) % EXTERNAL_ALIGNMENT;
      if (pad) chunks.push(new Uint8Array(pad));
      offset += pad;
      const entry = {
        name: t.name,
        dims: t.dims,
        dataType: t.dataType,
        dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
        externalData: [
          { key: 'location', value: options.externalName },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(t.raw.byteLength) },
        ],
      };
      chunks.push(t.raw);
      offset += t.raw.byteLength;
      return entry;
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
    const externalData = chunks.length ? concat(chunks, offset) : null;
    return { model: onnx.ModelProto.encode(model).finish(), externalData };
  }
}

/** Little-endian bytes of a typed array (this code only runs on little-endian hosts, as ONNX requires). */
function bytesOf(a: Float32Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

function concat(chunks: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}
