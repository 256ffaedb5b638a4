/**
 * DecoderModel over an optimum-style ONNX decoder, run in a worker thread.
 *
 * Input and output names, layer count and KV dtype are read from the session; shapes the graph
 * leaves symbolic come from config.json. Exports with and without `position_ids` both work.
 */
import { Worker } from 'node:worker_threads';
import { appendedFrom, type DecoderModel, type KvRows, type KvState, type ModelLayout, type StepInput, type StepOutput } from '@kvfold/fold-core';
import { ModelError } from './errors.ts';
import type { ModelFolder } from './model-folder.ts';
import type { Device, IoMeta, IoNames, WorkerReply, WorkerRequest } from './protocol.ts';

export interface DecoderOptions {
  readonly device?: Device;
  /** Intra-op threads of the session (default: ONNX Runtime's choice, one per core). */
  readonly threads?: number;
}

type StepReply = Extract<WorkerReply, { type: 'result' }>;

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
const PRESENT = /^present\.(\d+)\.(key|value)$/;

export class OnnxDecoder implements DecoderModel {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (r: StepReply) => void; reject: (e: Error) => void }>();
  private closed = false;
  /**
   * The worker keeps the cache of the last step (its past plus its new rows). When the next past is
   * provably that cache — `appendRows(lastPast, lastRows)` — it is not sent again: a fold moves its
   * growing cache across threads once instead of every step.
   */
  private lastPast: WeakRef<KvState> | null = null;
  private lastRows: KvRows | null = null;
  /** Steps run, and how many of them fed the worker's kept cache instead of sending the past. */
  readonly stats = { steps: 0, pastKept: 0 };

  private constructor(
    private readonly worker: Worker,
    readonly layout: ModelLayout,
    readonly names: IoNames,
    readonly device: Device,
  ) {
    worker.on('message', (msg: WorkerReply) => {
      if (msg.type !== 'result' && msg.type !== 'error') return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (msg.type === 'result') p.resolve(msg);
      else p.reject(new ModelError('KVF_MODEL_RUNTIME', `ONNX Runtime failed a step: ${msg.message}`));
    });
    const failAll = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
    };
    worker.on('error', (err) => failAll(new ModelError('KVF_MODEL_RUNTIME', `session worker crashed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => {
      if (!this.closed) failAll(new ModelError('KVF_MODEL_RUNTIME', `session worker exited (code ${code})`));
    });
  }

  /** Starts a session worker for the folder's ONNX file and discovers the decoder's I/O. */
  static async create(folder: ModelFolder, options: DecoderOptions = {}): Promise<OnnxDecoder> {
    const device = options.device ?? 'cpu';
    const worker = new Worker(new URL('./ts-worker-entry.mjs', import.meta.url), {
      workerData: { entry: new URL('./session-worker.ts', import.meta.url).href },
    });
    worker.unref();
    const ready = await new Promise<Extract<WorkerReply, { type: 'ready' }>>((resolve, reject) => {
      worker.once('message', (msg: WorkerReply) => {
        if (msg.type === 'ready') resolve(msg);
        else reject(new Error(msg.type === 'error' ? msg.message : `unexpected ${msg.type}`));
      });
      worker.once('error', reject);
      const init: WorkerRequest = { type: 'init', onnxPath: folder.onnxPath, device, ...(options.threads ? { threads: options.threads } : {}) };
      worker.postMessage(init);
    }).catch(async (err: Error) => {
      await worker.terminate();
      throw sessionError(folder, device, err);
    });
    try {
      const { names, layout } = discover(folder, ready.inputs, ready.outputs);
      return new OnnxDecoder(worker, layout, names, device);
    } catch (err) {
      await worker.terminate();
      throw err;
    }
  }

  async step(input: StepInput): Promise<StepOutput> {
    if (this.closed) throw new ModelError('KVF_MODEL_CLOSED', 'the model was closed; load it again');
    const { layout } = this;
    const n = input.tokens.length;
    if (n === 0) throw new RangeError('a step needs at least one token');
    checkState(input.past, layout);
    const id = this.nextId++;
    const origin = appendedFrom(input.past);
    const kept = this.lastRows !== null && origin !== undefined && origin.rows === this.lastRows && origin.base === this.lastPast?.deref();
    this.lastRows = null;
    this.stats.steps++;
    if (kept) this.stats.pastKept++;
    const req: WorkerRequest = {
      type: 'step',
      id,
      names: this.names,
      tokens: input.tokens,
      position: input.position,
      pastLength: input.past.length,
      kvHeads: layout.kvHeads,
      headDim: layout.headDim,
      kvType: layout.dtype,
      past: kept ? null : input.past.layers.map((l) => ({ key: l.key, value: l.value })),
      logits: input.logits,
    };
    const reply = await new Promise<StepReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage(req);
    });
    const rows: KvRows = { rows: n, layers: reply.rows };
    // The worker runs requests in order, so its kept cache is the latest request's: only that
    // reply may claim it (steps of concurrent folds on one model then simply send their past).
    if (id === this.nextId - 1) {
      this.lastPast = new WeakRef(input.past);
      this.lastRows = rows;
    }
    return { logits: reply.logits, rows };
  }

  /** Ends the session and its worker thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.worker.terminate();
  }
}

function checkState(state: KvState, layout: ModelLayout): void {
  const s = state.layout;
  if (s.layers !== layout.layers || s.kvHeads !== layout.kvHeads || s.headDim !== layout.headDim || s.dtype !== layout.dtype) {
    throw new RangeError(
      `KV state [${s.layers} layers, ${s.kvHeads} heads, ${s.headDim} dims, ${s.dtype}] does not fit this model [${layout.layers}, ${layout.kvHeads}, ${layout.headDim}, ${layout.dtype}]`,
    );
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

/** Maps the session's I/O onto the decoder contract, or explains why it is not one. */
export function discover(folder: ModelFolder, inputs: readonly IoMeta[], outputs: readonly IoMeta[]): { names: IoNames; layout: ModelLayout } {
  const byName = new Map(inputs.map((m) => [m.name, m]));
  const notDecoder = (why: string) =>
    new ModelError(
      'KVF_MODEL_NOT_A_DECODER',
      `${folder.onnxPath} is not a decoder with past_key_values: ${why}. Inputs: [${inputs.map((m) => m.name).join(', ')}]; outputs: [${outputs.map((m) => m.name).join(', ')}]. Export it with optimum's text-generation-with-past task.`,
    );
  const pairs = (metas: readonly IoMeta[], re: RegExp, what: string) => {
    const found: { key: string; value: string }[] = [];
    for (const m of metas) {
      const hit = re.exec(m.name);
      if (!hit) continue;
      const i = Number(hit[1]);
      found[i] ??= { key: '', value: '' };
      (found[i] as { key: string; value: string })[hit[2] as 'key' | 'value'] = m.name;
    }
    for (let i = 0; i < found.length; i++) {
      if (!found[i]?.key || !found[i]?.value) throw notDecoder(`${what} of layer ${i} lacks its key or value`);
    }
    return found;
  };
  if (!byName.has('input_ids')) throw notDecoder('no input_ids input');
  const past = pairs(inputs, PAST, 'past_key_values');
  const presents = pairs(outputs, PRESENT, 'present');
  if (past.length === 0) throw notDecoder('no past_key_values.{i}.key|value inputs');
  if (presents.length !== past.length) throw notDecoder(`${past.length} past layers but ${presents.length} present layers`);
  const logits = outputs.find((m) => m.name === 'logits');
  if (!logits) throw notDecoder('no logits output');
  const extra = inputs.filter((m) => !PAST.test(m.name) && !['input_ids', 'attention_mask', 'position_ids'].includes(m.name));
  if (extra.length) throw notDecoder(`unsupported inputs ${extra.map((m) => m.name).join(', ')}`);

  const keyMeta = byName.get(past[0]?.key ?? '') as IoMeta;
  const dtype = keyMeta.type === 'float32' ? 'float32' : keyMeta.type === 'float16' ? 'float16' : null;
  if (!dtype) throw notDecoder(`past_key_values are ${keyMeta.type}; float32 and float16 caches are supported`);
  const cfg = folder.config;
  const fixed = (d: number | string | undefined, fallback: number) => (typeof d === 'number' && d > 0 ? d : fallback);
  const kvHeads = fixed(keyMeta.shape[1], cfg.num_key_value_heads ?? cfg.num_attention_heads);
  const headDim = fixed(keyMeta.shape[3], cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads);
  const vocabSize = fixed(logits.shape[2], cfg.vocab_size);
  return {
    names: {
      inputIds: 'input_ids',
      attentionMask: byName.has('attention_mask') ? 'attention_mask' : null,
      positionIds: byName.has('position_ids') ? 'position_ids' : null,
      pastKeyValues: past,
      presents,
      logits: 'logits',
    },
    layout: { layers: past.length, kvHeads, headDim, dtype, maxPositions: cfg.max_position_embeddings, vocabSize },
  };
}
