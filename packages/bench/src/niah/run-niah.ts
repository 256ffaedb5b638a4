/**
 * Runs a needle-in-a-haystack grid: writes each haystack once, folds it at every chunk size under
 * the grid's KV policy, and asks each of its needles from the same folded state. Trials are
 * reported as they finish, so a long run leaves its results behind as it goes.
 */
import { chainDepth, createPolicy, type DecoderModel, foldAll, generate, generationRows, KV_WIDTHS, type KvPolicy, stepCount } from '@kvfold/fold-core';
import { type LoadedModel, ropeInverseFrequencies } from '@kvfold/onnx';
import { checkGrid, type NiahGrid, type PlannedHaystack, planHaystacks } from './grid.ts';
import { NiahError } from './errors.ts';
import { type Haystack, writeHaystack } from './haystack.ts';
import type { NiahProtocol, NiahTokenizer, ProtocolName } from './protocol.ts';
import { recallProtocol, recallVocabulary } from './recall-protocol.ts';
import { textProtocol } from './text-protocol.ts';

/** What a NIAH run needs of a loaded model. */
export interface NiahModel {
  readonly decoder: DecoderModel;
  readonly tokenizer: NiahTokenizer;
  readonly stopTokens: readonly number[];
  /** Where the model came from, for messages and reports. */
  readonly dir: string;
  /** The model's RoPE inverse frequencies (the streaming policy re-rotates cached keys). */
  ropeFrequencies(): Float64Array;
}

/** Adapts a model loaded by @kvfold/onnx. */
export function niahModel(loaded: LoadedModel): NiahModel {
  return {
    decoder: loaded.decoder,
    tokenizer: loaded.tokenizer,
    stopTokens: loaded.stopTokens,
    dir: loaded.folder.dir,
    ropeFrequencies: () => ropeInverseFrequencies(loaded.folder),
  };
}

/** One trial: a needle asked from a folded haystack. One line of results.jsonl. */
export interface NiahTrial {
  readonly protocol: ProtocolName;
  readonly length: number;
  readonly depth: number;
  readonly chunkSize: number;
  /** Fold steps after the needle's step, before the question (the paper's chain depth). */
  readonly chainDepth: number;
  readonly steps: number;
  readonly documentTokens: number;
  /** Index of the needle's first token in the document. */
  readonly needlePosition: number;
  readonly policy: string;
  readonly sink?: number;
  readonly window?: number;
  readonly kv: string;
  readonly needlesPerHaystack: number;
  /** The grid's seed; with `length` and `haystack` it rewrites the haystack. */
  readonly seed: number;
  readonly haystack: number;
  readonly needle: number;
  /** Streaming only: whether the needle's rows are still in the cache when the question comes. */
  readonly inWindow?: boolean;
  readonly expected: string;
  readonly got: string;
  readonly exact: boolean;
  readonly stopReason: string;
  readonly kvBytes: number;
  /** Fold of the whole haystack (shared by its needles) and this question's generation. */
  readonly timings: { readonly foldMs: number; readonly askMs: number };
  /** The process's peak resident memory so far. */
  readonly peakRssMiB: number;
}

export interface NiahHooks {
  /** After every trial. */
  onTrial?(trial: NiahTrial): void | Promise<void>;
  /** Before a haystack is folded at a chunk size. */
  onFold?(info: { haystack: PlannedHaystack; chunkSize: number; done: number; total: number }): void;
  /** After every fold step. */
  onStep?(info: { step: number; totalSteps: number }): void;
}

export interface NiahRun {
  readonly protocol: ProtocolName;
  readonly plan: readonly PlannedHaystack[];
  readonly trials: NiahTrial[];
}

/** Picks the protocol the grid asks for, or the one the vocabulary expresses. */
export function selectProtocol(model: NiahModel, grid: NiahGrid): NiahProtocol {
  const options = {
    needlesPerHaystack: grid.needlesPerHaystack,
    ...(grid.needleSize !== undefined ? { needleSize: grid.needleSize } : {}),
    ...(grid.chat ? { chat: true } : {}),
    ...(grid.maxNewTokens !== undefined ? { maxNewTokens: grid.maxNewTokens } : {}),
  };
  const name = grid.protocol === 'auto' ? (typeof recallVocabulary(model.tokenizer) === 'string' ? 'text' : 'recall') : grid.protocol;
  return name === 'recall' ? recallProtocol(model.tokenizer, model.stopTokens, options, model.dir) : textProtocol(model.tokenizer, model.stopTokens, options, model.dir);
}

/** Checks everything that can be checked before a step runs; returns the protocol and the plan. */
export function prepareNiah(model: NiahModel, grid: NiahGrid): { protocol: NiahProtocol; plan: PlannedHaystack[] } {
  checkGrid(grid);
  const protocol = selectProtocol(model, grid);
  return { protocol, plan: planHaystacks(grid, protocol, model.decoder.layout.maxPositions) };
}

export async function runNiah(model: NiahModel, grid: NiahGrid, hooks: NiahHooks = {}): Promise<NiahRun> {
  const { protocol, plan } = prepareNiah(model, grid);
  if (KV_WIDTHS[grid.kv] !== model.decoder.layout.dtype) {
    throw new NiahError('KVF_NIAH_BAD_POLICY', `the grid asks for a ${grid.kv} cache but the model holds ${model.decoder.layout.dtype}; load it with that width`);
  }
  const policy = createPolicy(grid.policy, grid.policy.kind === 'streaming' ? { invFreq: model.ropeFrequencies() } : {});
  const trials: NiahTrial[] = [];
  const total = plan.length * grid.chunkSizes.length;
  let done = 0;
  for (const planned of plan) {
    const haystack = writeHaystack(protocol, planned.documentTokens, planned.depths, planned.seed);
    for (const chunkSize of grid.chunkSizes) {
      hooks.onFold?.({ haystack: planned, chunkSize, done, total });
      for (const t of await askHaystack(model, grid, protocol, policy, planned, haystack, chunkSize, hooks)) {
        trials.push(t);
        await hooks.onTrial?.(t);
      }
      done++;
    }
  }
  return { protocol: protocol.name, plan, trials };
}

async function askHaystack(
  model: NiahModel,
  grid: NiahGrid,
  protocol: NiahProtocol,
  policy: KvPolicy,
  planned: PlannedHaystack,
  haystack: Haystack,
  chunkSize: number,
  hooks: NiahHooks,
): Promise<NiahTrial[]> {
  const D = haystack.tokens.length;
  const answerRows = Math.max(0, ...haystack.needles.map((p) => generationRows(p.needle.question.length, protocol.maxNewTokens)));
  const cache = await model.decoder.createCache({ capacity: policy.rows(D, chunkSize, answerRows) });
  try {
    const started = performance.now();
    await foldAll(model.decoder, cache, haystack.tokens, { chunkSize, policy }, (s) => hooks.onStep?.({ step: s.step, totalSteps: s.totalSteps }));
    const foldMs = performance.now() - started;
    const streaming = grid.policy.kind === 'streaming' ? grid.policy : null;
    const out: NiahTrial[] = [];
    for (const [i, placed] of haystack.needles.entries()) {
      const askStarted = performance.now();
      const g = await generate(model.decoder, cache, placed.needle.question, { maxNewTokens: protocol.maxNewTokens, stopTokens: model.stopTokens });
      const askMs = performance.now() - askStarted;
      const { got, exact } = placed.needle.judge(g);
      const end = placed.position + placed.needle.tokens.length;
      out.push({
        protocol: protocol.name,
        length: planned.length,
        depth: placed.depth,
        chunkSize,
        chainDepth: chainDepth(placed.position, D, chunkSize),
        steps: stepCount(D, chunkSize),
        documentTokens: D,
        needlePosition: placed.position,
        policy: grid.policy.kind,
        ...(streaming ? { sink: streaming.sink, window: streaming.window, inWindow: placed.position >= D - streaming.window || end <= streaming.sink } : {}),
        kv: grid.kv,
        needlesPerHaystack: haystack.needles.length,
        seed: grid.seed,
        haystack: planned.index,
        needle: i,
        expected: placed.needle.expected,
        got,
        exact,
        stopReason: g.stopReason,
        kvBytes: cache.bytes,
        timings: { foldMs: round(foldMs), askMs: round(askMs) },
        peakRssMiB: round(process.resourceUsage().maxRSS / 1024),
      });
    }
    return out;
  } finally {
    await cache.release();
  }
}

const round = (x: number) => Math.round(x * 10) / 10;
