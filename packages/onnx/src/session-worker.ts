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
import { KvBuffer, KvCacheError, type KvDtype, type KvLayout, type LogitsMode, formatBytes } from '@kvfold/fold-core';
import * as ort from 'onnxruntime-node';
import { deriveFoldGraph, describePlan, type FoldGraph, readGraph } from './fold-graph.ts';
import { discover, type IoNames } from './io-names.ts';
import { ModelError } from './errors.ts';
import type { CacheOp, CacheState, Device, FoldGraphChoice, WorkerReply, WorkerRequest } from './protocol.ts';
import { createStepPlan, type PackedSlotFeeds, type StepPlan } from './step-plans.ts';

if (!parentPort) throw new Error('session-worker must run in a worker thread');
const port = parentPort;

/** The `--kv` value of each width, for messages. */
const KV_FLAG: Record<KvDtype, string> = { float32: 'f32', float16: 'f16', int8: 'int8' };

/** Share of the memory the OS reports available that one cache allocation may take. */
const MEMORY_HEADROOM = 0.9;

interface Session {
  readonly ort: ort.InferenceSession;
  readonly names: IoNames;
  readonly layout: KvLayout;
  /** How this session feeds pasts and takes new rows (step-plans.ts), chosen once. */
  readonly steps: StepPlan;
}

let session: Session | null = null;
const caches = new Map<number, KvBuffer>();
/** Ones for attention_mask, shared by every step: a step feeds a view of its first (past + n). */
let ones = new BigInt64Array(0);

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
      const held = req.kvDtype ?? layout.dtype;
      const graph = chooseGraph(req.foldGraph, req.device, () => deriveFoldGraph(read, names, layout, { keepPresents: true }), () => deriveFoldGraph(read, names, layout, { held, ...(req.slots ? { slots: req.slots } : {}) }), read.bytes);
      const planHeld = graph.plan.kind === 'in-place' ? graph.plan.held : layout.dtype;
      if (planHeld !== held) {
        throw new ModelError(
          'KVF_MODEL_KV_WIDTH',
          `a ${held} KV cache needs the fold graph, which widens each layer's past inside the graph; this session runs ${describePlan(graph.plan)}, so it holds the cache as the export does (${layout.dtype}): use --kv ${KV_FLAG[layout.dtype]}${req.device !== 'cpu' ? ', or the CPU' : ''}`,
        );
      }
      const steps = createStepPlan(graph.plan, names, { ...layout, dtype: held });
      const created = await ort.InferenceSession.create(graph.model, {
        executionProviders: [req.device],
        graphOptimizationLevel: 'all',
        ...(req.threads ? { intraOpNumThreads: req.threads, interOpNumThreads: 1 } : {}),
        // The graph is loaded from memory: external weights resolve against the model's own folder.
        extra: { session: { model_external_initializers_file_folder_path: dirname(req.onnxPath) } },
        // A resident session keeps the presents where it runs: on the GPU, no copy to the host.
        ...(steps.outputLocations ? { preferredOutputLocation: steps.outputLocations } : {}),
      });
      // The cache's layout alone (the model's also carries its vocabulary size).
      const { layers, kvHeads, headDim, maxPositions } = layout;
      session = { ort: created, names, layout: { layers, kvHeads, headDim, dtype: held, maxPositions }, steps };
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
    const started = performance.now();
    if (req.type === 'packed') {
      const slots = req.slots.map((slot) => ({ buffer: cacheOf(slot.cacheId), tokens: slot.tokens.length, ids: slot.tokens, packed: slot }));
      if (new Set(slots.map((x) => x.buffer)).size !== slots.length) throw new RangeError('the slots of a packed step hold distinct caches');
      const r = await packedStep(s, slots);
      reply(
        { type: 'packed-result', id: req.id, slots: r.logits.map((logits, i) => ({ logits, state: stateOf((slots[i] as { buffer: KvBuffer }).buffer) })), copiedBytes: r.copiedBytes, outputBytes: r.outputBytes, ms: performance.now() - started },
        r.logits.map((l) => l.buffer as ArrayBuffer),
      );
      return;
    }
    const buffer = cacheOf(req.cacheId);
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
    const buffer = new KvBuffer(s.layout, op.capacity, {
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
      s.steps.edited(buffer);
      return { buffer };
    case 'mark':
      s.steps.marked(buffer);
      return { buffer };
    case 'rewind':
      buffer.rewind(op.mark);
      s.steps.rewound(buffer, op.mark.length);
      return { buffer };
    case 'evict':
      buffer.evict(op.from, op.count, op.invFreq);
      s.steps.edited(buffer);
      return { buffer };
    case 'release':
      s.steps.edited(buffer);
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

/** Bytes onnxruntime-node copied out of the session for the outputs fetched. */
function outputBytesOf(steps: StepPlan, out: ort.InferenceSession.ReturnType): number {
  let bytes = 0;
  for (const name of steps.fetches) {
    const t = out[name];
    if (t && t.location === 'cpu') bytes += (t.data as ArrayBufferView).byteLength;
  }
  return bytes;
}

/** Runs one chunk against a cache and appends its rows. */
async function step(s: Session, buffer: KvBuffer, tokens: Int32Array, mode: LogitsMode): Promise<{ logits: Float32Array; copiedBytes: number; outputBytes: number }> {
  const { names, steps } = s;
  const n = tokens.length;
  if (n === 0) throw new RangeError('a step needs at least one token');
  const copiedBefore = buffer.copiedBytes;
  steps.prepare(buffer, n);
  const total = buffer.length + n;
  ensureOnes(total);
  let copied = 2 * n * 8; // input ids and position ids
  const feeds: Record<string, ort.Tensor> = {
    [names.inputIds]: new ort.Tensor('int64', BigInt64Array.from(tokens, (t) => BigInt(t)), [1, n]),
    ...steps.pastFeeds(buffer),
    ...steps.modeFeeds(),
  };
  if (names.attentionMask) feeds[names.attentionMask] = new ort.Tensor('int64', ones.subarray(0, total), [1, total]);
  if (names.positionIds) feeds[names.positionIds] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(buffer.nextPosition + i)), [1, n]);
  // Where the graph can, lm_head runs on the last position only, unless every position's logits are asked for.
  const lastOnly = steps.logitsAt !== null && mode !== 'all';
  if (steps.logitsAt) {
    const at = lastOnly ? [n - 1] : Array.from({ length: n }, (_, i) => i);
    feeds[steps.logitsAt] = new ort.Tensor('int64', BigInt64Array.from(at, (i) => BigInt(i)), [at.length]);
  }
  const out = await s.ort.run(feeds, steps.fetches as string[]);
  const outputBytes = outputBytesOf(steps, out);
  copied += steps.append(buffer, out, n);

  const all = out[names.logits]?.data as Float32Array; // [positions computed, vocab]
  let logits: Float32Array;
  if (mode === 'all' || (mode === 'last' && lastOnly)) logits = all;
  else if (mode === 'last') {
    const vocab = all.length / n;
    logits = all.slice((n - 1) * vocab, n * vocab);
    copied += vocab * 4;
  } else logits = new Float32Array(0);
  return { logits, copiedBytes: copied + buffer.copiedBytes - copiedBefore, outputBytes };
}

/**
 * A packed step: the tokens of every slot (a cache, and its sequences at their own positions,
 * each reading the cache's shared prefix and its own rows) in one session run, slot after slot;
 * each slot's new rows are appended to its cache, and each gets the logits of its `logitsAt`.
 */
async function packedStep(s: Session, slots: readonly (PackedSlotFeeds & { ids: Int32Array })[]): Promise<{ logits: Float32Array[]; copiedBytes: number; outputBytes: number }> {
  const { names, steps } = s;
  if (!names.positionIds || !names.attentionMask) throw new RangeError('a packed step needs position_ids and attention_mask inputs');
  const copiedBefore = slots.reduce((sum, x) => sum + x.buffer.copiedBytes, 0);
  for (const x of slots) {
    if (x.tokens === 0) throw new RangeError('each slot of a packed step needs at least one token');
    steps.prepare(x.buffer, x.tokens);
  }
  const total = slots.reduce((sum, x) => sum + x.tokens, 0);
  const first = slots[0] as PackedSlotFeeds;
  ensureOnes(first.buffer.length + total);
  const ids = new BigInt64Array(total);
  const positions = new BigInt64Array(total);
  const logitsAt: bigint[] = [];
  let offset = 0;
  for (const x of slots) {
    for (let i = 0; i < x.tokens; i++) {
      ids[offset + i] = BigInt(x.ids[i] as number);
      positions[offset + i] = BigInt(x.packed.positions[i] as number);
    }
    for (const i of x.packed.logitsAt) logitsAt.push(BigInt(offset + i));
    offset += x.tokens;
  }
  const feeds: Record<string, ort.Tensor> = {
    [names.inputIds]: new ort.Tensor('int64', ids, [1, total]),
    [names.positionIds]: new ort.Tensor('int64', positions, [1, total]),
    [names.attentionMask]: new ort.Tensor('int64', ones.subarray(0, first.buffer.length + total), [1, first.buffer.length + total]),
    ...steps.pastFeeds(first.buffer),
    ...steps.modeFeeds(slots),
  };
  if (steps.logitsAt) feeds[steps.logitsAt] = new ort.Tensor('int64', BigInt64Array.from(logitsAt), [logitsAt.length]);
  const out = await s.ort.run(feeds, steps.fetches as string[]);
  const outputBytes = outputBytesOf(steps, out);
  let copied = 2 * total * 8 + logitsAt.length * 8 + slots.reduce((sum, x) => sum + x.packed.bias.byteLength, 0);
  offset = 0;
  for (const x of slots) {
    steps.appendSlot(x.buffer, out, offset, x.tokens, total);
    offset += x.tokens;
  }
  // Each slot's logits rows: those the graph computed (its logitsAt), or picked from every position's.
  const all = out[names.logits]?.data as Float32Array;
  const vocab = all.length / (steps.logitsAt ? logitsAt.length : total);
  const logits: Float32Array[] = [];
  let row = 0;
  offset = 0;
  for (const x of slots) {
    const mine = new Float32Array(x.packed.logitsAt.length * vocab);
    for (const [j, i] of x.packed.logitsAt.entries()) {
      const at = steps.logitsAt ? row + j : offset + i;
      mine.set(all.subarray(at * vocab, (at + 1) * vocab), j * vocab);
    }
    copied += mine.byteLength;
    row += x.packed.logitsAt.length;
    offset += x.tokens;
    logits.push(mine);
  }
  const copiedAfter = slots.reduce((sum, x) => sum + x.buffer.copiedBytes, 0);
  return { logits, copiedBytes: copied + copiedAfter - copiedBefore, outputBytes };
}
