/**
 * The session thread: owns an ONNX Runtime session and the KV caches of the folds run on it.
 *
 * onnxruntime-node runs `session.run` synchronously on the calling thread, and a fold step can
 * take seconds; running the session here keeps the process's event loop free (timers fire, BullMQ
 * locks renew, health checks answer, signals are handled). The caches live here too, next to the
 * session that reads and extends them: a step sends tokens in and logits out, never the cache.
 */
import { readFile } from 'node:fs/promises';
import { freemem } from 'node:os';
import { dirname } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { type KvData, KvBuffer, KvCacheError, type LogitsMode, formatBytes } from '@kvfold/fold-core';
import * as ort from 'onnxruntime-node';
import { deriveFoldGraph, type FoldGraph, type FoldPlan, readGraph } from './fold-graph.ts';
import { discover, type IoNames } from './io-names.ts';
import { ModelError } from './errors.ts';
import type { CacheOp, CacheState, Device, FoldGraphChoice, WorkerReply, WorkerRequest } from './protocol.ts';
import { invalidate, keepPresents, pinPresents, residentPast, rewoundTo } from './resident-cache.ts';

if (!parentPort) throw new Error('session-worker must run in a worker thread');
const port = parentPort;

/** Share of the memory the OS reports available that one cache allocation may take. */
const MEMORY_HEADROOM = 0.9;

interface Session {
  readonly ort: ort.InferenceSession;
  readonly names: IoNames;
  readonly plan: FoldPlan;
  readonly layout: ReturnType<typeof discover>['layout'];
  /** Output names a step fetches. */
  readonly fetches: readonly string[];
}

let session: Session | null = null;
const caches = new Map<number, KvBuffer>();
/** Ones for attention_mask, shared by every step: a step feeds a view of its first (past + n). */
let ones = new BigInt64Array(0);
/** Tensors over each cache's arrays, for pasts fed as the whole buffer; rebuilt when the buffer grows. */
const bufferTensors = new WeakMap<KvBuffer, { generation: number; tensors: { key: ort.Tensor; value: ort.Tensor }[] }>();

function reply(message: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(message, transfer);
}

function stateOf(b: KvBuffer): CacheState {
  return { length: b.length, nextPosition: b.nextPosition, tokensSeen: b.tokensSeen, capacity: b.capacity };
}

port.on('message', async (req: WorkerRequest) => {
  try {
    if (req.type === 'init') {
      const read = readGraph(await readFile(req.onnxPath));
      const { names, layout } = discover(req.onnxPath, req.config, read.inputs, read.outputs);
      const inputs = read.inputs;
      const outputs = read.outputs;
      const graph = chooseGraph(req.foldGraph, req.device, () => deriveFoldGraph(read, names, layout, { keepPresents: true }), () => deriveFoldGraph(read, names, layout), read.bytes);
      const presentNames = names.presents.flatMap((p) => [p.key, p.value]);
      const created = await ort.InferenceSession.create(graph.model, {
        executionProviders: [req.device],
        graphOptimizationLevel: 'all',
        ...(req.threads ? { intraOpNumThreads: req.threads, interOpNumThreads: 1 } : {}),
        // The graph is loaded from memory: external weights resolve against the model's own folder.
        extra: { session: { model_external_initializers_file_folder_path: dirname(req.onnxPath) } },
        // A resident session keeps the presents where it runs: on the GPU, no copy to the host.
        ...(graph.plan.kind === 'resident' && graph.plan.presentsOn === 'gpu-buffer'
          ? { preferredOutputLocation: Object.fromEntries(presentNames.map((n) => [n, 'gpu-buffer' as const])) }
          : {}),
      });
      const rowNames = graph.plan.kind === 'in-place' || graph.plan.kind === 'resident' ? graph.plan.layers.flatMap((l) => [l.rows.key, l.rows.value]) : [];
      const fetches = [names.logits, ...(graph.plan.kind === 'in-place' ? rowNames : graph.plan.kind === 'resident' ? [...rowNames, ...presentNames] : presentNames)];
      session = { ort: created, names, plan: graph.plan, layout, fetches };
      reply({ type: 'ready', id: req.id, inputs, outputs, plan: graph.plan });
      return;
    }
    if (req.type === 'close') {
      caches.clear();
      await session?.ort.release();
      session = null;
      reply({ type: 'closed', id: req.id });
      return;
    }
    const s = session;
    if (!s) throw new Error('the session is not initialised');
    if (req.type === 'cache') {
      const { buffer, rows } = cacheOp(s, req.cacheId, req.op);
      reply({ type: 'done', id: req.id, state: stateOf(buffer), ...(rows ? { rows } : {}) }, rows ? rows.layers.flatMap((l) => [l.key.buffer, l.value.buffer] as ArrayBuffer[]) : []);
      return;
    }
    const buffer = cacheOf(req.cacheId);
    const started = performance.now();
    const r = await step(s, buffer, req.tokens, req.logits);
    reply(
      { type: 'result', id: req.id, logits: r.logits, state: stateOf(buffer), copiedBytes: r.copiedBytes, outputBytes: r.outputBytes, ms: performance.now() - started },
      r.logits.byteLength ? [r.logits.buffer as ArrayBuffer] : [],
    );
  } catch (err) {
    const e = err as Error & { code?: string };
    const kind = err instanceof KvCacheError ? 'kv' : err instanceof ModelError ? 'model' : err instanceof RangeError ? 'range' : 'other';
    reply({ type: 'error', id: req.id, message: e.message ?? String(err), kind, ...(e.code ? { code: e.code } : {}) });
  }
});

/** The graph a session runs (see FoldGraphChoice); a graph that cannot be derived runs as it is. */
function chooseGraph(choice: FoldGraphChoice, device: Device, resident: () => FoldGraph, inPlace: () => FoldGraph, bytes: Uint8Array): FoldGraph {
  if (choice === 'standard') return { plan: { kind: 'standard', reason: 'asked for' }, model: bytes };
  if (choice === 'resident' || device !== 'cpu') {
    const g = resident();
    // onnxruntime-node hands out device-resident tensors for WebGPU only; elsewhere presents come back to the host.
    return g.plan.kind === 'resident' && device === 'webgpu' ? { ...g, plan: { ...g.plan, presentsOn: 'gpu-buffer' } } : g;
  }
  return inPlace();
}

function cacheOf(id: number): KvBuffer {
  const b = caches.get(id);
  if (!b) throw new KvCacheError('KVF_KV_RELEASED', `KV cache ${id} was released or never created`);
  return b;
}

function cacheOp(s: Session, cacheId: number, op: CacheOp): { buffer: KvBuffer; rows?: ReturnType<KvBuffer['read']> } {
  if (op.op === 'create') {
    const buffer = new KvBuffer({ layers: s.layout.layers, kvHeads: s.layout.kvHeads, headDim: s.layout.headDim, dtype: s.layout.dtype, maxPositions: s.layout.maxPositions }, op.capacity, {
      guard: memoryGuard,
    });
    caches.set(cacheId, buffer);
    ensureOnes(buffer.capacity);
    return { buffer };
  }
  const buffer = cacheOf(cacheId);
  switch (op.op) {
    case 'reserve':
      buffer.reserve(op.rows);
      ensureOnes(buffer.capacity);
      return { buffer };
    case 'read':
      return { buffer, rows: buffer.read(op.from, op.to) };
    case 'append':
      buffer.append(op.rows, op.positions);
      invalidate(buffer);
      return { buffer };
    case 'mark':
      pinPresents(buffer);
      return { buffer };
    case 'rewind':
      buffer.rewind(op.mark);
      rewoundTo(buffer, op.mark.length);
      return { buffer };
    case 'evict':
      buffer.evict(op.from, op.count, op.invFreq);
      invalidate(buffer);
      return { buffer };
    case 'quantize':
      buffer.quantize(op.from, op.to);
      invalidate(buffer);
      return { buffer };
    case 'release':
      invalidate(buffer);
      caches.delete(cacheId);
      return { buffer };
  }
}

/** Refuses an allocation the machine cannot hold, before the OS kills the process for it. */
function memoryGuard(bytes: number, rows: number): void {
  const cgroup = process.constrainedMemory?.() ?? 0;
  const available = Math.min(freemem(), cgroup > 0 ? cgroup - process.memoryUsage.rss() : Number.POSITIVE_INFINITY);
  if (bytes > available * MEMORY_HEADROOM) {
    throw new KvCacheError(
      'KVF_KV_NO_MEMORY',
      `a KV cache of ${rows} rows needs ${formatBytes(bytes)}, but ${formatBytes(Math.max(0, available))} of memory is available; fold shorter documents, use the streaming policy, or run on a machine with more memory`,
    );
  }
}

function ensureOnes(n: number): void {
  if (ones.length < n) ones = new BigInt64Array(Math.max(n, ones.length * 2)).fill(1n);
}

/** Runs one chunk against a cache and appends its rows. */
async function step(s: Session, buffer: KvBuffer, tokens: Int32Array, mode: LogitsMode): Promise<{ logits: Float32Array; copiedBytes: number; outputBytes: number }> {
  const { names, layout, plan } = s;
  const { kvHeads, headDim } = layout;
  const n = tokens.length;
  if (n === 0) throw new RangeError('a step needs at least one token');
  const copiedBefore = buffer.copiedBytes;
  if (plan.kind === 'in-place') buffer.ensureRoom(n);
  const past = buffer.length;
  const total = past + n;
  ensureOnes(total);
  let copied = 2 * n * 8; // input ids and position ids
  const feeds: Record<string, ort.Tensor> = {
    [names.inputIds]: new ort.Tensor('int64', BigInt64Array.from(tokens, (t) => BigInt(t)), [1, n]),
  };
  if (names.attentionMask) feeds[names.attentionMask] = new ort.Tensor('int64', ones.subarray(0, total), [1, total]);
  if (names.positionIds) {
    feeds[names.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(buffer.nextPosition + i)), [1, n]);
  }
  Object.assign(feeds, pastFeeds(s, buffer));
  const out = await s.ort.run(feeds, s.fetches as string[]);
  let outputBytes = 0;
  for (const name of s.fetches) {
    const t = out[name];
    if (t && t.location === 'cpu') outputBytes += (t.data as ArrayBufferView).byteLength;
  }

  if (plan.kind === 'in-place' || plan.kind === 'resident') {
    buffer.ensureRoom(n);
    plan.layers.forEach((lp, l) => {
      buffer.writeLayer(l, out[lp.rows.key]?.data as KvData, out[lp.rows.value]?.data as KvData, n, lp.order);
    });
  } else {
    buffer.ensureRoom(n);
    names.presents.forEach((p, l) => {
      buffer.writeLayer(l, newRows(out[p.key]?.data as KvData, kvHeads, past, total, headDim), newRows(out[p.value]?.data as KvData, kvHeads, past, total, headDim), n, 'heads-first');
    });
    copied += n * buffer.rowBytes; // the rows sliced out of the presents before they are written
  }
  buffer.advance(n);
  if (plan.kind === 'resident') keepPresents(buffer, names.presents.map((p) => ({ key: out[p.key] as ort.Tensor, value: out[p.value] as ort.Tensor })));

  const all = out[names.logits]?.data as Float32Array;
  const vocab = all.length / n;
  let logits: Float32Array;
  if (mode === 'all') logits = all;
  else if (mode === 'last') {
    logits = all.slice((n - 1) * vocab, n * vocab);
    copied += vocab * 4;
  } else logits = new Float32Array(0);
  return { logits, copiedBytes: copied + buffer.copiedBytes - copiedBefore, outputBytes };
}

/**
 * Each layer's past: the device presents of a resident cache; the whole buffer (GroupQueryAttention,
 * or a graph that slices it); the buffer's first rows (one KV head: contiguous, fed as a view); or,
 * for a standard graph with several KV heads, the rows packed as [kvHeads, past, D] — a copy.
 */
function pastFeeds(s: Session, buffer: KvBuffer): Record<string, ort.Tensor> {
  const { names, plan } = s;
  const { kvHeads, headDim, dtype } = s.layout;
  const past = buffer.length;
  const feeds: Record<string, ort.Tensor> = {};
  const set = (l: number, key: ort.Tensor, value: ort.Tensor) => {
    const pkv = names.pastKeyValues[l] as { key: string; value: string };
    feeds[pkv.key] = key;
    feeds[pkv.value] = value;
  };
  const resident = plan.kind === 'resident' ? residentPast(buffer) : null;
  if (resident) {
    for (const [l, t] of resident.entries()) set(l, t.key, t.value);
  } else if (plan.kind === 'in-place' && plan.layers.every((l) => l.past !== 'prefix')) {
    for (const [l, t] of wholeBufferTensors(buffer).entries()) set(l, t.key, t.value);
  } else if (kvHeads === 1 || past === 0) {
    const dims = [1, kvHeads, past, headDim];
    for (let l = 0; l < buffer.layout.layers; l++) {
      const { key, value } = buffer.layer(l);
      set(l, new ort.Tensor(dtype, key.subarray(0, past * headDim), dims), new ort.Tensor(dtype, value.subarray(0, past * headDim), dims));
    }
  } else {
    const dims = [1, kvHeads, past, headDim];
    for (const [l, r] of buffer.read(0, past).layers.entries()) set(l, new ort.Tensor(dtype, r.key, dims), new ort.Tensor(dtype, r.value, dims));
  }
  return feeds;
}

function wholeBufferTensors(buffer: KvBuffer): { key: ort.Tensor; value: ort.Tensor }[] {
  const kept = bufferTensors.get(buffer);
  if (kept && kept.generation === buffer.generation) return kept.tensors;
  const { layers, kvHeads, headDim, dtype } = buffer.layout;
  const dims = [1, kvHeads, buffer.capacity, headDim];
  const tensors = Array.from({ length: layers }, (_, l) => {
    const { key, value } = buffer.layer(l);
    return { key: new ort.Tensor(dtype, key, dims), value: new ort.Tensor(dtype, value, dims) };
  });
  bufferTensors.set(buffer, { generation: buffer.generation, tensors });
  return tensors;
}

/** Rows [from, to) of a [1, heads, to, dim] present as a fresh [heads, to - from, dim] array. */
function newRows(data: KvData, heads: number, from: number, to: number, dim: number): KvData {
  const n = to - from;
  const out = data instanceof Float32Array ? new Float32Array(heads * n * dim) : new Uint16Array(heads * n * dim);
  for (let h = 0; h < heads; h++) {
    const src = (h * to + from) * dim;
    out.set(data.subarray(src, src + n * dim), h * n * dim);
  }
  return out;
}
