/**
 * DecoderModel over an optimum-style ONNX decoder, run in a session thread that also owns the KV
 * caches (session-worker.ts). A cache here is a handle: its rows stay in the session thread, and
 * only tokens, logits, and the rows a checkpoint reads or a resume loads cross between threads.
 *
 * Input and output names, layer count and KV dtype are read from the graph; shapes the graph
 * leaves symbolic come from config.json. Exports with and without `position_ids` both work. The
 * session runs the fold graph derived from the export (fold-graph.ts) where it can.
 */
import { Worker } from 'node:worker_threads';
import {
  type CacheOptions,
  type DecoderModel,
  type KvCache,
  KvCacheError,
  type KvCacheErrorCode,
  type KvDtype,
  type KvLayout,
  type KvMark,
  type KvPositions,
  type LogitsMode,
  type KvRows,
  kvRowBytes,
  type ModelLayout,
  type PackedStepInput,
  sameGeometry,
  type StepInput,
  type StepOutput,
} from '@kvfold/fold-core';
import { ModelError, type ModelErrorCode } from './errors.ts';
import { describePlan, type FoldPlan } from './fold-graph.ts';
import { discover } from './io-names.ts';
import type { ModelFolder } from './model-folder.ts';
import type { CacheOp, CacheState, Device, FoldGraphChoice, IoNames, PackedFeeds, WorkerReply, WorkerRequest } from './protocol.ts';

export interface DecoderOptions {
  readonly device?: Device;
  /** Intra-op threads of the session (default: ONNX Runtime's choice, one per core). */
  readonly threads?: number;
  /** Run the export as it is instead of its fold graph (for comparisons; default `auto`). */
  readonly foldGraph?: FoldGraphChoice;
  /**
   * The width caches are held at: float32, float16 or int8 (default: the export's). Another width
   * than the export's needs the fold graph, which widens each layer's past in the graph (kv-width.ts).
   */
  readonly kvDtype?: KvDtype;
  /**
   * Caches one session run can serve (default 1): steps of different caches asked for while the
   * session is busy run together as one packed step, up to this many (packed-attention.ts). Needs
   * a graph that packs, with the cache held at the export's width; elsewhere it is 1.
   */
  readonly slots?: number;
}

/** A step waiting for the session: its slot of the next packed step. */
interface Queued {
  readonly cache: OnnxKvCache;
  readonly tokens: Int32Array;
  readonly packed: PackedFeeds;
  /** A plain step's logits mode (it may run alone, as an ordinary step); null for a packed step. */
  readonly plain: LogitsMode | null;
  readonly resolve: (out: StepOutput) => void;
  readonly reject: (err: Error) => void;
}

type Reply = Exclude<WorkerReply, { type: 'error' }>;

/** Totals over a decoder's steps: what its code copied, and what onnxruntime-node copied out. */
export interface DecoderCounters {
  steps: number;
  /** Of `steps`, those run packed (`stepPacked`, or in a packed step with other caches). */
  packedSteps: number;
  /** Of `steps`, those that shared their session run with another cache's. */
  sharedSteps: number;
  /** Session runs of steps. */
  runs: number;
  copiedBytes: number;
  outputBytes: number;
}

export class OnnxDecoder implements DecoderModel {
  readonly counters: DecoderCounters = { steps: 0, packedSteps: 0, sharedSteps: 0, runs: 0, copiedBytes: 0, outputBytes: 0 };
  private nextId = 1;
  private nextCache = 1;
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private closed = false;
  /** Steps waiting for the session, and whether a run is in flight. */
  private readonly queue: Queued[] = [];
  private running = false;

  private constructor(
    private readonly worker: Worker,
    readonly layout: ModelLayout,
    readonly names: IoNames,
    readonly device: Device,
    /** How the session runs the export (the fold graph, or the export as it is, and why). */
    readonly plan: FoldPlan,
  ) {
    worker.on('message', (msg: WorkerReply) => this.settle(msg));
    const failAll = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => failAll(new ModelError('KVF_MODEL_RUNTIME', `session thread crashed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.closed) failAll(new ModelError('KVF_MODEL_RUNTIME', `session thread exited (code ${code})`));
    });
    // An idle session thread never keeps the process alive; one with work in flight does (see
    // request). Unref'd after the listeners: attaching a 'message' listener refs it again.
    worker.unref();
  }

  /** Starts a session thread for the folder's ONNX file, reads its I/O and derives its fold graph. */
  static async create(folder: ModelFolder, options: DecoderOptions = {}): Promise<OnnxDecoder> {
    const device = options.device ?? 'cpu';
    const worker = new Worker(new URL('./ts-worker-entry.mjs', import.meta.url), {
      workerData: { entry: new URL('./session-worker.ts', import.meta.url).href },
    });
    const init: WorkerRequest = {
      type: 'init',
      id: 0,
      onnxPath: folder.onnxPath,
      device,
      config: folder.config,
      foldGraph: options.foldGraph ?? 'auto',
      ...(options.threads ? { threads: options.threads } : {}),
      ...(options.kvDtype ? { kvDtype: options.kvDtype } : {}),
      ...(options.slots && options.slots > 1 ? { slots: options.slots } : {}),
    };
    const ready = await new Promise<Extract<WorkerReply, { type: 'ready' }>>((resolve, reject) => {
      const onMessage = (msg: WorkerReply) => {
        worker.off('error', reject);
        if (msg.type === 'ready') resolve(msg);
        else if (msg.type === 'error') reject(msg.kind === 'model' ? new ModelError(msg.code as ModelErrorCode, msg.message) : new Error(msg.message));
        else reject(new Error(`unexpected ${msg.type}`));
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
      worker.postMessage(init);
    }).catch(async (err: Error) => {
      await worker.terminate();
      throw err instanceof ModelError ? err : sessionError(folder, device, err);
    });
    const { names, layout } = discover(folder.onnxPath, folder.config, ready.inputs, ready.outputs);
    // The cache's width is the plan's (the export's, or the one asked for), not the graph input's.
    const held = ready.plan.kind === 'in-place' ? ready.plan.held : layout.dtype;
    return new OnnxDecoder(worker, { ...layout, dtype: held }, names, device, ready.plan);
  }

  /** The plan in one line, for logs. */
  get planSummary(): string {
    return describePlan(this.plan);
  }

  async createCache(options: CacheOptions): Promise<KvCache> {
    const cacheId = this.nextCache++;
    const { state } = (await this.request({ type: 'cache', id: 0, cacheId, op: { op: 'create', capacity: options.capacity } })) as Extract<Reply, { type: 'done' }>;
    return new OnnxKvCache(this, cacheId, kvLayoutOf(this.layout), state);
  }

  /** Caches one session run serves (DecoderOptions.slots, where the graph packs). */
  get slots(): number {
    return this.plan.kind === 'in-place' ? (this.plan.packed?.slots ?? 1) : 1;
  }

  async step(input: StepInput): Promise<StepOutput> {
    const cache = this.#own(input.cache);
    if (input.tokens.length === 0) throw new RangeError('a step needs at least one token');
    if (this.slots === 1) {
      const r = (await this.request({ type: 'step', id: 0, cacheId: cache.id, tokens: input.tokens, logits: input.logits })) as Extract<Reply, { type: 'result' }>;
      cache.sync(r.state);
      this.#count(1, r, false);
      return { logits: r.logits, copiedBytes: r.copiedBytes };
    }
    // A plain step as a slot: every row is its prefix, its tokens read each other causally.
    const n = input.tokens.length;
    const bias = new Float32Array(n * n);
    for (let i = 0; i < n; i++) bias.fill(MASKED_SCORE, i * n + i + 1, (i + 1) * n);
    const positions = Int32Array.from({ length: n }, (_, i) => cache.nextPosition + i);
    const logitsAt = input.logits === 'all' ? Int32Array.from({ length: n }, (_, i) => i) : Int32Array.of(n - 1);
    return this.#enqueue(cache, input.tokens, { positions, prefixRows: cache.length, bias, logitsAt }, input.logits);
  }

  /** Whether this session can run packed steps (several sequences over one shared prefix). */
  get packs(): boolean {
    return this.plan.kind === 'in-place' && this.plan.packed !== null;
  }

  /**
   * A packed step: several sequences' tokens at their own positions, each reading the cache's
   * first `prefixRows` rows and its own rows beyond them (packed-attention.ts), in one session run
   * (shared with other caches' steps where the session serves several slots).
   */
  async stepPacked(input: PackedStepInput): Promise<StepOutput> {
    const cache = this.#own(input.cache);
    if (!this.packs) throw new RangeError(`this session cannot run packed steps: ${describePlan(this.plan)}`);
    const n = input.tokens.length;
    if (n === 0 || input.positions.length !== n || input.sequences.length !== n) throw new RangeError('a packed step needs tokens, positions and sequences of one length, at least one');
    const own = cache.length - input.prefixRows;
    if (own < 0 || input.rowSequences.length !== own) throw new RangeError(`a packed step over ${cache.length} rows with a prefix of ${input.prefixRows} needs the sequence of each of its ${Math.max(0, own)} own rows`);
    // [S, own + S]: a token reads the earlier rows of its sequence and its sequence's tokens up to itself.
    const width = own + n;
    const bias = new Float32Array(n * width).fill(MASKED_SCORE);
    for (let i = 0; i < n; i++) {
      const seq = input.sequences[i];
      for (let r = 0; r < own; r++) if (input.rowSequences[r] === seq) bias[i * width + r] = 0;
      for (let j = 0; j <= i; j++) if (input.sequences[j] === seq) bias[i * width + own + j] = 0;
    }
    return this.#enqueue(cache, input.tokens, { positions: input.positions, prefixRows: input.prefixRows, bias, logitsAt: input.logitsAt }, null);
  }

  #own(cache: KvCache): OnnxKvCache {
    if (!(cache instanceof OnnxKvCache) || cache.owner !== this) throw new RangeError('a step runs on a cache created by the same model (createCache)');
    if (!sameGeometry(cache.layout, this.layout)) throw new RangeError('the cache does not fit this model');
    return cache;
  }

  #count(steps: number, r: { copiedBytes: number; outputBytes: number }, packed: boolean): void {
    this.counters.runs++;
    this.counters.steps += steps;
    if (packed) this.counters.packedSteps += steps;
    if (steps > 1) this.counters.sharedSteps += steps;
    this.counters.copiedBytes += r.copiedBytes;
    this.counters.outputBytes += r.outputBytes;
  }

  #enqueue(cache: OnnxKvCache, tokens: Int32Array, packed: PackedFeeds, plain: LogitsMode | null): Promise<StepOutput> {
    return new Promise<StepOutput>((resolve, reject) => {
      this.queue.push({ cache, tokens, packed, plain, resolve, reject });
      this.#schedule();
    });
  }

  /**
   * Runs the waiting steps when the session is free: the steps asked for in the same turn of the
   * event loop, or while the last run was in flight, go together, up to `slots` caches a run.
   */
  #schedule(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    setImmediate(() => {
      const batch: Queued[] = [];
      const taken = new Set<OnnxKvCache>();
      for (let i = 0; i < this.queue.length && batch.length < this.slots; ) {
        const q = this.queue[i] as Queued;
        if (taken.has(q.cache)) i++;
        else {
          taken.add(q.cache);
          batch.push(q);
          this.queue.splice(i, 1);
        }
      }
      void this.#run(batch)
        .catch(async (err: Error) => {
          // A step that fails in company is run again alone, so only its own cache's step fails.
          if (batch.length === 1) (batch[0] as Queued).reject(err);
          else for (const q of batch) await this.#run([q]).catch((e: Error) => q.reject(e));
        })
        .finally(() => {
          this.running = false;
          this.#schedule();
        });
    });
  }

  async #run(batch: readonly Queued[]): Promise<void> {
    const only = batch[0] as Queued;
    if (batch.length === 1 && only.plain !== null) {
      // Alone, a plain step runs as an ordinary step: the export's own attention.
      const r = (await this.request({ type: 'step', id: 0, cacheId: only.cache.id, tokens: only.tokens, logits: only.plain })) as Extract<Reply, { type: 'result' }>;
      only.cache.sync(r.state);
      this.#count(1, r, false);
      only.resolve({ logits: r.logits, copiedBytes: r.copiedBytes });
      return;
    }
    const slots = batch.map((q) => ({ cacheId: q.cache.id, tokens: q.tokens, ...q.packed }));
    // The biases are copied, not transferred: a step run again alone sends its own again.
    const r = (await this.request({ type: 'packed', id: 0, slots })) as Extract<Reply, { type: 'packed-result' }>;
    this.#count(batch.length, r, true);
    for (const [i, q] of batch.entries()) {
      const slot = r.slots[i] as { logits: Float32Array; state: CacheState };
      q.cache.sync(slot.state);
      const logits = q.plain === 'none' ? new Float32Array(0) : slot.logits;
      q.resolve({ logits, copiedBytes: Math.round(r.copiedBytes / batch.length) });
    }
  }

  /** @internal A cache operation, run in the session thread. */
  async cacheOp(cacheId: number, op: CacheOp, transfer: ArrayBuffer[] = []): Promise<{ state: CacheState; rows?: KvRows }> {
    const r = (await this.request({ type: 'cache', id: 0, cacheId, op }, transfer)) as Extract<Reply, { type: 'done' }>;
    return r.rows ? { state: r.state, rows: r.rows } : { state: r.state };
  }

  /** Releases the session and ends its thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.request({ type: 'close', id: 0 }).catch(() => {});
    this.closed = true;
    await this.worker.terminate();
  }

  private request(message: WorkerRequest, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.closed) return Promise.reject(new ModelError('KVF_MODEL_CLOSED', 'the model was closed; load it again'));
    const id = this.nextId++;
    if (this.pending.size === 0) this.worker.ref();
    return new Promise<Reply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...message, id }, transfer);
    });
  }

  private settle(msg: WorkerReply): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (this.pending.size === 0) this.worker.unref();
    if (msg.type !== 'error') p.resolve(msg);
    else if (msg.kind === 'kv') p.reject(new KvCacheError(msg.code as KvCacheErrorCode, msg.message));
    else if (msg.kind === 'range') p.reject(new RangeError(msg.message));
    else p.reject(new ModelError('KVF_MODEL_RUNTIME', `ONNX Runtime failed a step: ${msg.message}`));
  }
}

/** A score a token may not read: float32's lowest finite value. */
const MASKED_SCORE = -3.4028234663852886e38;

/** A KV cache held by an OnnxDecoder's session thread; this handle mirrors its counters. */
export class OnnxKvCache implements KvCache {
  #state: CacheState;
  #released = false;

  /** @internal Use `OnnxDecoder.createCache`. */
  constructor(
    readonly owner: OnnxDecoder,
    readonly id: number,
    readonly layout: KvLayout,
    state: CacheState,
  ) {
    this.#state = state;
  }

  get length(): number {
    return this.#state.length;
  }
  get nextPosition(): number {
    return this.#state.nextPosition;
  }
  get tokensSeen(): number {
    return this.#state.tokensSeen;
  }
  get capacity(): number {
    return this.#state.capacity;
  }
  get bytes(): number {
    return this.#state.length * kvRowBytes(this.layout);
  }
  get allocatedBytes(): number {
    return this.#state.capacity * kvRowBytes(this.layout);
  }

  /** @internal */
  sync(state: CacheState): void {
    this.#state = state;
  }

  async reserve(rows: number): Promise<void> {
    await this.#op({ op: 'reserve', rows });
  }
  async read(from: number, to: number): Promise<KvRows> {
    const r = await this.#op({ op: 'read', from, to });
    return r.rows as KvRows;
  }
  async append(rows: KvRows, positions?: KvPositions): Promise<void> {
    // The rows move to the session thread: the caller hands them over.
    const transfer = [...new Set(rows.layers.flatMap((l) => [l.key.buffer, l.value.buffer] as ArrayBuffer[]))];
    await this.#op({ op: 'append', rows, ...(positions ? { positions: { nextPosition: positions.nextPosition, tokensSeen: positions.tokensSeen } } : {}) }, transfer);
  }
  mark(): KvMark {
    this.#live();
    // The session's plan learns of the mark (a resident one pins what the device holds now); the
    // request is ordered before any later step, and nothing waits for it.
    void this.owner.cacheOp(this.id, { op: 'mark' }).catch(() => {});
    return { length: this.#state.length, nextPosition: this.#state.nextPosition, tokensSeen: this.#state.tokensSeen };
  }
  async rewind(mark: KvMark): Promise<void> {
    await this.#op({ op: 'rewind', mark: { length: mark.length, nextPosition: mark.nextPosition, tokensSeen: mark.tokensSeen } });
  }
  async evict(from: number, count: number, invFreq: Float64Array): Promise<void> {
    await this.#op({ op: 'evict', from, count, invFreq });
  }
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await this.owner.cacheOp(this.id, { op: 'release' }).catch(() => {});
  }

  #live(): void {
    if (this.#released) throw new KvCacheError('KVF_KV_RELEASED', 'the KV cache was released; create a new one');
  }

  async #op(op: CacheOp, transfer: ArrayBuffer[] = []): Promise<{ state: CacheState; rows?: KvRows }> {
    this.#live();
    const r = await this.owner.cacheOp(this.id, op, transfer);
    this.#state = r.state;
    return r;
  }
}

function sessionError(folder: ModelFolder, device: Device, err: Error): ModelError {
  if (device !== 'cpu') {
    return new ModelError(
      'KVF_MODEL_DEVICE',
      `execution provider "${device}" is unavailable for ${folder.onnxPath}: ${err.message}. ` +
        (device === 'cuda'
          ? 'The default install is CPU-only; on a GPU host run `pnpm gpu:install-cuda` (README, "GPU hosts"), or use --device cpu.'
          : 'Use --device cpu, or check the GPU driver and Vulkan loader.'),
      { cause: err },
    );
  }
  return new ModelError('KVF_MODEL_MALFORMED', `ONNX Runtime cannot load ${folder.onnxPath}: ${err.message}`, { cause: err });
}

/** The cache's layout alone (a model's layout also carries its vocabulary size). */
function kvLayoutOf(l: KvLayout): KvLayout {
  return { layers: l.layers, kvHeads: l.kvHeads, headDim: l.headDim, dtype: l.dtype, maxPositions: l.maxPositions };
}
