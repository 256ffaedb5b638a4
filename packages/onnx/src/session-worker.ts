/**
 * The worker thread that owns an ONNX Runtime session.
 *
 * onnxruntime-node runs `session.run` synchronously on the calling thread; a fold step can take
 * seconds. Running the session here keeps the process's event loop free: timers fire, BullMQ locks
 * renew, health checks answer and signals are handled while a step runs.
 */
import { parentPort } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import type { WorkerReply, WorkerRequest } from './protocol.ts';

if (!parentPort) throw new Error('session-worker must run in a worker thread');
const port = parentPort;
let session: ort.InferenceSession | null = null;
/** The `present` tensors of the last step: the next step's past when the fold continues from it. */
let kept: { key: ort.Tensor; value: ort.Tensor }[] | null = null;

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

port.on('message', async (req: WorkerRequest) => {
  try {
    if (req.type === 'init') {
      session = await ort.InferenceSession.create(req.onnxPath, {
        executionProviders: [req.device],
        graphOptimizationLevel: 'all',
        ...(req.threads ? { intraOpNumThreads: req.threads, interOpNumThreads: 1 } : {}),
      });
      reply({
        type: 'ready',
        inputs: session.inputMetadata.map(meta),
        outputs: session.outputMetadata.map(meta),
      });
      return;
    }
    if (req.type === 'close') {
      await session?.release();
      session = null;
      reply({ type: 'closed' });
      return;
    }
    if (!session) throw new Error('session is not initialised');
    const started = performance.now();
    const feeds: Record<string, ort.Tensor> = {};
    const n = req.tokens.length;
    const total = req.pastLength + n;
    const ids = BigInt64Array.from(req.tokens, (t) => BigInt(t));
    feeds[req.names.inputIds] = new ort.Tensor('int64', ids, [1, n]);
    if (req.names.attentionMask) feeds[req.names.attentionMask] = new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]);
    if (req.names.positionIds) {
      feeds[req.names.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(req.position + i)), [1, n]);
    }
    const shape = [1, req.kvHeads, req.pastLength, req.headDim];
    if (req.past === null) {
      if (!kept || kept[0]?.key.dims[2] !== req.pastLength) throw new Error('the kept cache does not match the requested past');
      kept.forEach((layer, i) => {
        const names = req.names.pastKeyValues[i] as { key: string; value: string };
        feeds[names.key] = layer.key;
        feeds[names.value] = layer.value;
      });
    } else {
      req.past.forEach((layer, i) => {
        const names = req.names.pastKeyValues[i] as { key: string; value: string };
        feeds[names.key] = new ort.Tensor(req.kvType, layer.key, shape);
        feeds[names.value] = new ort.Tensor(req.kvType, layer.value, shape);
      });
    }
    kept = null;
    const out = await session.run(feeds);
    kept = req.names.presents.map((names) => ({ key: out[names.key] as ort.Tensor, value: out[names.value] as ort.Tensor }));

    // New rows: present[:, :, past:, :] per layer.
    const transfer: ArrayBuffer[] = [];
    const rows = req.names.presents.map((names) => {
      const slice = (name: string) => {
        const data = out[name]?.data as Float32Array | Uint16Array;
        const rowsOut = newRows(data, req.kvHeads, req.pastLength, total, req.headDim);
        transfer.push(rowsOut.buffer as ArrayBuffer);
        return rowsOut;
      };
      return { key: slice(names.key), value: slice(names.value) };
    });
    const all = out[req.names.logits]?.data as Float32Array;
    const vocab = all.length / n;
    const logits =
      req.logits === 'all' ? all.slice() : req.logits === 'last' ? all.slice((n - 1) * vocab, n * vocab) : new Float32Array(0);
    transfer.push(logits.buffer as ArrayBuffer);
    out[req.names.logits]?.dispose?.();
    reply({ type: 'result', id: req.id, logits, rows, ms: performance.now() - started }, transfer);
  } catch (err) {
    reply({ type: 'error', id: req.type === 'step' ? req.id : -1, message: (err as Error).message ?? String(err) });
  }
});

function meta(m: ort.InferenceSession.ValueMetadata) {
  return m.isTensor ? { name: m.name, type: m.type as string, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] };
}

/** Rows [from, to) of a [1, heads, to, dim] tensor as a fresh [heads, to - from, dim] array. */
function newRows(data: Float32Array | Uint16Array, heads: number, from: number, to: number, dim: number): Float32Array | Uint16Array {
  const n = to - from;
  const out = data instanceof Float32Array ? new Float32Array(heads * n * dim) : new Uint16Array(heads * n * dim);
  for (let h = 0; h < heads; h++) {
    const src = (h * to + from) * dim;
    out.set(data.subarray(src, src + n * dim), h * n * dim);
  }
  return out;
}
