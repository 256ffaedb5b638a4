/**
 * Generation from a folded cache. The cache is marked before the question and rewound after the
 * answer, so every question reads the same folded state and nothing a question appends is seen by
 * another; no copy of the cache is made. The last generated token is never fed back (its rows
 * would serve nothing).
 */
import type { KvCache } from './kv-cache.ts';
import type { DecoderModel } from './model.ts';
import { greedy, sampler, type SamplingOptions } from './sampling.ts';

export interface GenerateOptions {
  readonly maxNewTokens: number;
  /** Generation stops when one of these is produced; it is not part of the answer. */
  readonly stopTokens?: readonly number[];
  /** Sample instead of taking the argmax (default: greedy). */
  readonly sampling?: SamplingOptions;
  /**
   * Generation stops once the decoded answer contains one of these; `text` then ends before it
   * (the tokens that spelled it stay in `tokenIds`). Needs `decode`.
   */
  readonly stopStrings?: readonly string[];
  readonly decode?: (ids: readonly number[]) => string;
}

export type StopReason = 'stop-token' | 'stop-string' | 'max-new-tokens';

export interface Generation {
  readonly tokenIds: number[];
  readonly stopReason: StopReason;
  /** The decoded answer, when `decode` is given (cut before a stop string). */
  readonly text?: string;
}

/**
 * Reads `prompt` after the cache, then appends the picked token until a stop or the limit; rewinds
 * the cache to where it was. A model that packs steps runs it as a packed step of one sequence
 * (the folded cache read where it lies), the others through `step`.
 */
export async function generate(model: DecoderModel, cache: KvCache, prompt: Int32Array, options: GenerateOptions): Promise<Generation> {
  if (packs(model)) return (await packedGroup(model, cache, [prompt], () => options.sampling, options, prompt.length))[0] as Generation;
  const answer = new Answer(prompt, options.sampling, options);
  const vocab = model.layout.vocabSize;
  const mark = cache.mark();
  try {
    while (answer.done === null) {
      const out = await model.step({ tokens: answer.input, cache, logits: 'last' });
      answer.take(out.logits, 0, vocab);
    }
    return answer.done;
  } finally {
    await cache.rewind(mark);
  }
}

/** One answer being generated: its next input, its tokens so far, and how it ended. */
class Answer {
  readonly tokenIds: number[] = [];
  done: Generation | null = null;
  private readonly pick: typeof greedy;
  private readonly stops: Set<number>;
  private readonly stopStrings: string[];

  constructor(
    public input: Int32Array,
    sampling: SamplingOptions | undefined,
    private readonly options: GenerateOptions,
  ) {
    if (input.length === 0) throw new RangeError('a query needs at least one token');
    if (!Number.isInteger(options.maxNewTokens) || options.maxNewTokens < 0) {
      throw new RangeError(`maxNewTokens must be an integer >= 0, got ${options.maxNewTokens}`);
    }
    this.stopStrings = (options.stopStrings ?? []).filter((s) => s.length > 0);
    if (this.stopStrings.length && !options.decode) throw new RangeError('stop strings need a decode function');
    this.pick = sampling ? sampler(sampling) : greedy;
    this.stops = new Set(options.stopTokens ?? []);
    if (options.maxNewTokens === 0) this.finish('max-new-tokens');
  }

  /** Picks the next token from row `row` of `logits`; it becomes the next input unless the answer ends. */
  take(logits: Float32Array, row: number, vocab: number): void {
    const next = this.pick(logits, row, vocab);
    if (this.stops.has(next)) {
      this.finish('stop-token');
      return;
    }
    this.tokenIds.push(next);
    const text = this.stopStrings.length ? (this.options.decode as (ids: readonly number[]) => string)(this.tokenIds) : '';
    const at = Math.min(...this.stopStrings.map((s) => text.indexOf(s)).filter((i) => i >= 0));
    if (Number.isFinite(at)) this.finish('stop-string', text.slice(0, at));
    else if (this.tokenIds.length >= this.options.maxNewTokens) this.finish('max-new-tokens');
    else this.input = Int32Array.of(next);
  }

  private finish(stopReason: StopReason, text = this.options.decode?.(this.tokenIds)): void {
    this.done = { tokenIds: this.tokenIds, stopReason, ...(text !== undefined ? { text } : {}) };
  }
}

/** Rows a question of `promptTokens` tokens and its answer add to a cache (the last token is never fed back). */
export function generationRows(promptTokens: number, maxNewTokens: number): number {
  return maxNewTokens === 0 ? 0 : promptTokens + maxNewTokens - 1;
}

/**
 * Rows questions of `promptTokens` tokens add to a cache at most when up to `together` of them are
 * answered at once (`generateBatch`'s `maxBatch`): the rows of the `together` longest.
 */
export function batchGenerationRows(promptTokens: readonly number[], maxNewTokens: number, together: number): number {
  const rows = promptTokens.map((n) => generationRows(n, maxNewTokens)).sort((a, b) => b - a);
  return rows.slice(0, Math.max(1, together)).reduce((a, b) => a + b, 0);
}

/** Options of `generateBatch`: `generate`'s, with each question's own sampling (its own seed). */
export interface GenerateBatchOptions extends Omit<GenerateOptions, 'sampling'> {
  /** Sampling of question i (absent: greedy). */
  readonly sampling?: (question: number) => SamplingOptions | undefined;
  /** Questions decoded together in one step at most (default all of them). */
  readonly maxBatch?: number;
  /**
   * Prompt tokens one step reads at most (default 256; a longer prompt runs alone): prompts are
   * read together up to it, as a fold reads a chunk, since a step holds a score for every token
   * and every row it reads.
   */
  readonly maxStepTokens?: number;
}

/**
 * Answers several questions from one folded cache, their steps packed together: each step runs
 * the next tokens of up to `maxBatch` questions in one model step, every question reading the
 * folded cache (once for all of them) and its own rows. Each answer equals `generate`'s for its
 * question alone: the same positions, the same rows read. Models that cannot pack steps answer
 * one question at a time. The cache is rewound to where it was.
 */
export async function generateBatch(model: DecoderModel, cache: KvCache, prompts: readonly Int32Array[], options: GenerateBatchOptions): Promise<Generation[]> {
  const { sampling, maxBatch = prompts.length, maxStepTokens = DEFAULT_STEP_TOKENS, ...common } = options;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw new RangeError(`maxBatch must be an integer >= 1, got ${maxBatch}`);
  if (!Number.isInteger(maxStepTokens) || maxStepTokens < 1) throw new RangeError(`maxStepTokens must be an integer >= 1, got ${maxStepTokens}`);
  const samplingOf = (i: number) => sampling?.(i);
  const results: Generation[] = [];
  if (!packs(model)) {
    for (const [i, prompt] of prompts.entries()) {
      const s = samplingOf(i);
      results.push(await generate(model, cache, prompt, { ...common, ...(s ? { sampling: s } : {}) }));
    }
    return results;
  }
  for (let from = 0; from < prompts.length; from += maxBatch) {
    results.push(...(await packedGroup(model, cache, prompts.slice(from, from + maxBatch), (q) => samplingOf(from + q), common, maxStepTokens)));
  }
  return results;
}

type PackingModel = DecoderModel & Required<Pick<DecoderModel, 'stepPacked'>>;

function packs(model: DecoderModel): model is PackingModel {
  return model.packs === true && typeof model.stepPacked === 'function';
}

const DEFAULT_STEP_TOKENS = 256;

/**
 * One group of questions, decoded together from the folded cache: the prompts in steps of up to
 * `maxStepTokens` tokens, then one token of every answer still going per step, together.
 */
async function packedGroup(
  model: PackingModel,
  cache: KvCache,
  prompts: readonly Int32Array[],
  samplingOf: (question: number) => SamplingOptions | undefined,
  options: Omit<GenerateOptions, 'sampling'>,
  maxStepTokens: number,
): Promise<Generation[]> {
  const answers = prompts.map((prompt, q) => ({ answer: new Answer(prompt, samplingOf(q), options), sequence: q }));
  const vocab = model.layout.vocabSize;
  const mark = cache.mark();
  const position = answers.map(() => mark.nextPosition);
  const rowSequences: number[] = [];
  /** Runs one packed step of `group`'s inputs and takes each one's next token. */
  const advance = async (group: typeof answers) => {
    const tokens: number[] = [];
    const positions: number[] = [];
    const sequences: number[] = [];
    const logitsAt: number[] = [];
    for (const { answer, sequence } of group) {
      for (const [j, t] of answer.input.entries()) {
        tokens.push(t);
        positions.push((position[sequence] as number) + j);
        sequences.push(sequence);
      }
      position[sequence] = (position[sequence] as number) + answer.input.length;
      logitsAt.push(tokens.length - 1);
    }
    const out = await model.stepPacked({
      cache,
      tokens: Int32Array.from(tokens),
      positions: Int32Array.from(positions),
      sequences: Int32Array.from(sequences),
      prefixRows: mark.length,
      rowSequences: Int32Array.from(rowSequences),
      logitsAt: Int32Array.from(logitsAt),
    });
    rowSequences.push(...sequences);
    for (const [row, { answer }] of group.entries()) answer.take(out.logits, row, vocab);
  };
  const live = () => answers.filter(({ answer }) => answer.done === null);
  try {
    let prompted: typeof answers = [];
    let promptTokens = 0;
    for (const one of live()) {
      if (prompted.length && promptTokens + one.answer.input.length > maxStepTokens) {
        await advance(prompted);
        [prompted, promptTokens] = [[], 0];
      }
      prompted.push(one);
      promptTokens += one.answer.input.length;
    }
    if (prompted.length) await advance(prompted);
    for (let group = live(); group.length; group = live()) await advance(group);
    return answers.map(({ answer }) => answer.done as Generation);
  } finally {
    await cache.rewind(mark);
  }
}
