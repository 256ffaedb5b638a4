/**
 * The fold: a left fold over a document's chunks with the KV cache as the accumulator.
 *
 *     state_0 = empty cache
 *     state_t = policy.admit(state_{t-1}, kv(chunk_t | state_{t-1}))   positions continue
 *
 * `fold` is an async generator yielding after every step, so a caller can report progress,
 * checkpoint, or stop; to resume, pass the state and step it stopped at as `from`.
 */
import { chunkSpan, stepCount } from './chunks.ts';
import type { KvState } from './kv-state.ts';
import type { DecoderModel, LogitsMode } from './model.ts';
import { tokenNll } from './nll.ts';
import { fullPolicy, type KvPolicy } from './policy.ts';

/** Where a fold starts: the state after `step` steps, and (for NLL) the logits of its last token. */
export interface FoldStart<S = KvState> {
  readonly step: number;
  readonly state: S;
  /** Logits [vocab] of the last token folded so far; lets per-chunk NLL score the next chunk's first token. */
  readonly lastLogits?: Float32Array;
}

export interface FoldOptions<S = KvState> {
  readonly chunkSize: number;
  /** What the accumulator keeps (default: full). */
  readonly policy?: KvPolicy<S>;
  /** Compute per-chunk NLL (needs every position's logits). */
  readonly nll?: boolean;
  /** Keep every position's logits of each step in the yielded info (exactness checks). */
  readonly keepLogits?: boolean;
  readonly from?: FoldStart<S>;
}

export interface FoldStep<S = KvState> {
  /** Steps done, this one included (1-based count). */
  readonly step: number;
  readonly totalSteps: number;
  /** Tokens read so far. */
  readonly tokens: number;
  /** Rows in the cache after this step. */
  readonly kvLength: number;
  /** Bytes the accumulator holds after this step. */
  readonly kvBytes: number;
  /** The token range of this step's chunk. */
  readonly start: number;
  readonly end: number;
  /**
   * Mean NLL (nats/token) of this chunk's tokens given everything before them. The document's
   * first token has no prediction and is left out; so is a resumed chunk's first token when the
   * start carried no logits.
   */
  readonly nll?: number;
  /** Tokens the NLL averages over. */
  readonly nllTokens?: number;
  /** [chunk, vocab] logits when `keepLogits`. */
  readonly logits?: Float32Array;
  /** Logits [vocab] of the chunk's last token. */
  readonly lastLogits: Float32Array;
  readonly state: S;
  /** Milliseconds the model step took. */
  readonly stepMs: number;
}

export async function* fold<S = KvState>(model: DecoderModel, tokens: Int32Array, options: FoldOptions<S>): AsyncGenerator<FoldStep<S>, S> {
  const { chunkSize } = options;
  const policy = options.policy ?? (fullPolicy as unknown as KvPolicy<S>);
  const total = tokens.length;
  const totalSteps = stepCount(total, chunkSize);
  const vocab = model.layout.vocabSize;
  const from = options.from;
  if (from && (from.step < 0 || from.step > totalSteps)) {
    throw new RangeError(`cannot resume at step ${from.step}: the fold has ${totalSteps} steps`);
  }
  let state = from?.state ?? policy.init(model.layout);
  let lastLogits = from?.lastLogits;
  const wantAll = options.nll || options.keepLogits;
  const mode: LogitsMode = wantAll ? 'all' : 'last';

  for (let t = from?.step ?? 0; t < totalSteps; t++) {
    const { start, end } = chunkSpan(t, total, chunkSize);
    const chunk = tokens.subarray(start, end);
    const began = performance.now();
    const past = policy.view(state);
    const out = await model.step({ tokens: chunk, past, position: past.nextPosition, logits: mode });
    const stepMs = performance.now() - began;
    const n = end - start;

    let nll: number | undefined;
    let nllTokens: number | undefined;
    if (options.nll) {
      let sum = 0;
      let count = 0;
      if (lastLogits) {
        sum += tokenNll(lastLogits, 0, vocab, chunk[0] as number);
        count++;
      }
      for (let i = 0; i + 1 < n; i++) {
        sum += tokenNll(out.logits, i, vocab, chunk[i + 1] as number);
        count++;
      }
      nll = count ? sum / count : Number.NaN;
      nllTokens = count;
    }
    lastLogits = wantAll ? out.logits.slice((n - 1) * vocab, n * vocab) : out.logits;
    state = policy.admit(state, out.rows);
    yield {
      step: t + 1,
      totalSteps,
      tokens: end,
      kvLength: policy.length(state),
      kvBytes: policy.bytes(state),
      start,
      end,
      lastLogits,
      state,
      stepMs,
      ...(nll !== undefined ? { nll, nllTokens } : {}),
      ...(options.keepLogits ? { logits: out.logits } : {}),
    };
  }
  return state;
}

/** What `foldAll` keeps of each step: everything but the state. */
export type FoldStepInfo = Omit<FoldStep<unknown>, 'state'>;

/** Runs a fold to the end and returns the final state, the last logits, and each step's info. */
export async function foldAll<S = KvState>(
  model: DecoderModel,
  tokens: Int32Array,
  options: FoldOptions<S>,
  onStep?: (step: FoldStep<S>) => void,
): Promise<{ state: S; lastLogits: Float32Array | undefined; steps: FoldStepInfo[] }> {
  const steps: FoldStepInfo[] = [];
  const policy = options.policy ?? (fullPolicy as unknown as KvPolicy<S>);
  let state = options.from?.state ?? policy.init(model.layout);
  let lastLogits = options.from?.lastLogits;
  for await (const s of fold(model, tokens, options)) {
    onStep?.(s);
    const { state: next, ...info } = s;
    steps.push(info);
    state = next;
    lastLogits = s.lastLogits;
  }
  return { state, lastLogits, steps };
}
