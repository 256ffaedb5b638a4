/**
 * The peer: the loop a user of onnxruntime-node (or transformers.js, which runs the same loop)
 * writes to read a long text through a decoder export chunk by chunk. It knows nothing of KV-Fold:
 * it feeds the previous step's `present.*` outputs back as `past_key_values.*`, on the main thread,
 * with the session's default options.
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';

export interface PlainLoopResult {
  readonly steps: number;
  readonly foldMs: number;
  /** Bytes of the last step's presents: the cache the loop holds. */
  readonly kvBytes: number;
  readonly dtype: 'float32' | 'float16';
}

export async function plainLoop(modelDir: string, ids: Int32Array, chunkSize: number, threads: number, onLoaded?: () => void): Promise<PlainLoopResult> {
  const session = await ort.InferenceSession.create(join(modelDir, 'onnx', 'model.onnx'), { intraOpNumThreads: threads, interOpNumThreads: 1 });
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
  const dims = meta?.isTensor ? meta.shape : [];
  const [kvHeads, headDim] = [dims[1], dims[3]] as [number, number];
  const type = meta?.isTensor ? (meta.type as 'float32' | 'float16') : 'float32';
  const empty = () => new ort.Tensor(type, type === 'float32' ? new Float32Array(0) : new Uint16Array(0), [1, kvHeads, 0, headDim]);
  let past: Record<string, ort.Tensor> = Object.fromEntries(pastNames.map((n) => [n, empty()]));
  onLoaded?.();
  let steps = 0;
  const started = performance.now();
  for (let start = 0; start < ids.length; start += chunkSize) {
    const chunk = ids.subarray(start, start + chunkSize);
    const n = chunk.length;
    const feeds: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(chunk, (t) => BigInt(t)), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(start + n).fill(1n), [1, start + n]),
      ...past,
    };
    if (session.inputNames.includes('position_ids')) {
      feeds.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(start + i)), [1, n]);
    }
    const out = await session.run(feeds);
    past = Object.fromEntries(pastNames.map((n) => [n, out[n.replace('past_key_values.', 'present.')] as ort.Tensor]));
    steps++;
  }
  const foldMs = performance.now() - started;
  const kvBytes = Object.values(past).reduce((b, t) => b + (t.data as ArrayBufferView).byteLength, 0);
  await session.release();
  return { steps, foldMs, kvBytes, dtype: type };
}
