/**
 * The peer's side of the benchmark, each call in a process of its own (the caller spawns it): a
 * GGUF file loaded by llama.cpp through node-llama-cpp, on the CPU, with our thread count and a
 * batch size equal to our chunk size; N token ids evaluated (prefill tokens/s), then M tokens
 * decoded greedily after them (decode tokens/s), and the process's peak RSS. The greedy run gives
 * the token ids and the last prompt position's logits, to set beside our engine's.
 */
import { benchIds } from '../engine/measure-engine.ts';
import { importNodeLlamaCpp, type Llama, type LlamaContext, type LlamaModel, NODE_LLAMA_CPP_VERSION } from './install.ts';

const MiB = 2 ** 20;

/** Cache widths both engines hold: ours by name, llama.cpp's ggml type. */
export const PEER_KV_TYPES = { f32: 'F32', f16: 'F16' } as const;
export type PeerKv = keyof typeof PEER_KV_TYPES;

export interface LlamaCppSession {
  /** Folder node-llama-cpp is installed in. */
  readonly peerDir: string;
  readonly gguf: string;
  readonly threads: number;
  /** llama.cpp's batch size: our chunk size. */
  readonly chunkSize: number;
  readonly kv: PeerKv;
  /** The model's vocabulary, for the token ids (benchIds). */
  readonly vocab: number;
  /** llama.cpp's flash attention: its default "auto" turns it on where the device has it (the CPU does). */
  readonly flashAttention: 'auto' | boolean;
}

export interface LlamaCppRunOptions extends LlamaCppSession {
  readonly tokens: number;
  readonly decode: number;
}

export interface LlamaCppRun {
  readonly engine: string;
  readonly loadMs: number;
  /** RSS before node-llama-cpp loads: the process's own share of the peak. */
  readonly startRssMiB: number;
  /** RSS once the model is loaded and the context created. */
  readonly loadedRssMiB: number;
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
  readonly peakRssMiB: number;
  /** Whether llama.cpp ran flash attention (null: its log did not say). */
  readonly flashAttention: boolean | null;
  readonly contextSize: number;
  readonly batchSize: number;
}

export interface GreedyOptions {
  readonly tokens: number;
  readonly generate: number;
}

/** A greedy continuation of benchIds(tokens, vocab), and the logits [vocab] that picked its first token. */
export interface GreedyRun {
  readonly tokenIds: number[];
  readonly lastLogits: number[];
}

interface Opened {
  readonly llama: Llama;
  readonly model: LlamaModel;
  readonly context: LlamaContext;
  readonly loadMs: number;
  /** Whether llama.cpp ran flash attention (null: "auto" and its log did not say). */
  readonly flashAttention: () => boolean | null;
}

/** The line llama.cpp logs once it has decided on flash attention ("auto" decides per device). */
const FLASH_ATTENTION_LOG = /Flash Attention (enabled|disabled)/;
const STAND_IN_VOCABULARY_WARNING = /to tokenize text and then detokenize it resulted in a different text/;

async function open(o: LlamaCppSession, contextSize: number): Promise<Opened> {
  const { getLlama } = await importNodeLlamaCpp(o.peerDir);
  const started = performance.now();
  let flashAttention: boolean | null = null;
  const llama = await getLlama({
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    maxThreads: o.threads,
    logLevel: 'info',
    // stdout carries the result line: llama.cpp's warnings and errors go to stderr, its info is read for one fact.
    logger: (level, message) => {
      const fa = FLASH_ATTENTION_LOG.exec(message);
      if (fa) flashAttention = fa[1] === 'enabled';
      // The stand-in vocabulary is not meant to round-trip text: node-llama-cpp's check of that is expected to fail.
      if (STAND_IN_VOCABULARY_WARNING.test(message)) return;
      if (level === 'warn' || level === 'error' || level === 'fatal') process.stderr.write(`llama.cpp ${level}: ${message.trimEnd()}\n`);
    },
  });
  const model = await llama.loadModel({ modelPath: o.gguf, gpuLayers: 0 });
  const type = PEER_KV_TYPES[o.kv];
  const context = await model.createContext({
    contextSize,
    batchSize: o.chunkSize,
    sequences: 1,
    threads: { ideal: o.threads, min: o.threads },
    flashAttention: o.flashAttention,
    experimentalKvCacheKeyType: type,
    experimentalKvCacheValueType: type,
  });
  // llama.cpp logs its choice only when it makes one ("auto"); a forced setting is what ran.
  return { llama, model, context, loadMs: performance.now() - started, flashAttention: () => (o.flashAttention === 'auto' ? flashAttention : o.flashAttention) };
}

async function close(s: Opened): Promise<void> {
  await s.context.dispose();
  await s.model.dispose();
  await s.llama.dispose();
}

/** Prefill of `tokens` ids, then `decode` greedy tokens, in llama.cpp. */
export async function measureLlamaCpp(o: LlamaCppRunOptions): Promise<LlamaCppRun> {
  const startRss = process.memoryUsage.rss();
  const s = await open(o, o.tokens + o.decode + 1);
  try {
    const loadedRss = process.memoryUsage.rss();
    const ids = Array.from(benchIds(o.tokens, o.vocab));
    const sequence = s.context.getSequence();
    const prefillStarted = performance.now();
    await sequence.evaluateWithoutGeneratingNewTokens(ids);
    const prefillMs = performance.now() - prefillStarted;
    // As our side does: the document's first id again, then each picked token, `decode` steps in all.
    const decodeStarted = performance.now();
    let decoded = 0;
    for await (const _ of sequence.evaluate([ids[0] as number], { temperature: 0, yieldEogToken: true })) {
      if (++decoded === o.decode) break;
    }
    const decodeMs = performance.now() - decodeStarted;
    return {
      engine: `llama.cpp (node-llama-cpp ${NODE_LLAMA_CPP_VERSION}, CPU)`,
      loadMs: s.loadMs,
      startRssMiB: startRss / MiB,
      loadedRssMiB: loadedRss / MiB,
      prefillTokensPerSecond: (o.tokens / prefillMs) * 1000,
      decodeTokensPerSecond: (decoded / decodeMs) * 1000,
      peakRssMiB: (process.resourceUsage().maxRSS * 1024) / MiB,
      flashAttention: s.flashAttention(),
      contextSize: s.context.contextSize,
      batchSize: s.context.batchSize,
    };
  } finally {
    await close(s);
  }
}

/** llama.cpp's greedy continuation of benchIds(tokens, vocab): the first token from the logits it returns, the rest from its sampler at temperature 0. */
export async function llamaCppGreedy(o: LlamaCppSession & GreedyOptions): Promise<GreedyRun> {
  const s = await open(o, o.tokens + o.generate + 1);
  try {
    const prompt = Array.from(benchIds(o.tokens, o.vocab));
    const sequence = s.context.getSequence();
    const last = prompt.at(-1) as number;
    const out = await sequence.controlledEvaluate([...prompt.slice(0, -1), [last, { generateNext: { logits: true } }]]);
    const map = out[prompt.length - 1]?.next.logits;
    if (!map || map.size !== o.vocab) throw new Error(`llama.cpp returned ${map?.size ?? 0} logits for the last prompt position, expected ${o.vocab}`);
    const lastLogits = Array.from({ length: o.vocab }, (_, id) => map.get(id) as number);
    const tokenIds = [argmax(lastLogits)];
    if (o.generate > 1) {
      for await (const t of sequence.evaluate([tokenIds[0] as number], { temperature: 0, yieldEogToken: true })) {
        tokenIds.push(t);
        if (tokenIds.length === o.generate) break;
      }
    }
    return { tokenIds, lastLogits };
  } finally {
    await close(s);
  }
}

/** The first index of the largest value. */
export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if ((xs[i] as number) > (xs[best] as number)) best = i;
  return best;
}
