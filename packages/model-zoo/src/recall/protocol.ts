/**
 * The needle-in-a-haystack protocol of the recall model: how a trial is written and what the
 * model must answer. See RECALL.md ("Protocol") for the rules in prose.
 *
 *   prompt  = [<s>] haystack-with-needle question
 *   needle  = KEY v1 .. vk           (vi distinct needle tokens n*)
 *   question = [filler ...] KEY      (the prompt's last token is KEY)
 *   answer  = v1 .. vk, then </s>
 */
import { BOS_ID, EOS_ID, FIRST_NEEDLE_ID, KEY_ID, type RecallLayout, tokenClass } from './layout.ts';
import { recallVocabulary } from './tokenizer.ts';
import { seededRandom } from '../rng.ts';

/** How to write one trial. */
export interface TrialOptions {
  /** Prompt length in tokens, `<s>` and question included. */
  readonly length: number;
  /** Needle value indices (0 for n0, ...): distinct, at least one. */
  readonly needle: readonly number[];
  /**
   * Where the needle sits in the haystack, 0 (first haystack token) to 1 (its last tokens, so
   * that vk is followed directly by the question).
   */
  readonly depth: number;
  /** Start with `<s>` (default true). Without it, depth 0 puts KEY at position 0. */
  readonly bos?: boolean;
  /** Filler tokens before the question's KEY (default 0: the question is `KEY` alone). */
  readonly questionFillers?: number;
  /** Seed of the filler sequence (default 0). */
  readonly seed?: number;
}

/** A trial: prompt ids, its text, and the expected continuation. */
export interface RecallTrial {
  readonly ids: number[];
  readonly text: string;
  /** Position of the needle's KEY in `ids`. */
  readonly keyPosition: number;
  /** Ids of v1..vk: what greedy generation must produce, followed by `</s>`. */
  readonly answer: number[];
}


/** Writes a trial: seeded filler haystack, the needle at `depth`, the question at the end. */
export function recallTrial(layout: RecallLayout, options: TrialOptions): RecallTrial {
  const bos = options.bos ?? true;
  const questionFillers = options.questionFillers ?? 0;
  const k = options.needle.length;
  const start = bos ? 1 : 0;
  const haystack = options.length - start - questionFillers - 1; // tokens between <s> and the question
  if (k < 1 || new Set(options.needle).size !== k) throw new RangeError('recall trial: needle values must be distinct and at least one');
  for (const v of options.needle) {
    if (!Number.isInteger(v) || v < 0 || v >= layout.needleTokens) throw new RangeError(`recall trial: no needle token n${v}`);
  }
  if (haystack < k + 1) throw new RangeError(`recall trial: length ${options.length} leaves no room for a ${k}-value needle`);
  if (options.length + k + 1 > layout.maxPositions) {
    throw new RangeError(`recall trial: prompt plus answer exceed the model's ${layout.maxPositions} positions`);
  }
  if (!(options.depth >= 0 && options.depth <= 1)) throw new RangeError(`recall trial: depth ${options.depth} is not in [0, 1]`);
  const next = seededRandom(options.seed ?? 0); // filler choice: trials are reproducible from a seed
  const filler = () => layout.firstFillerId + Math.floor(next() * layout.fillerTokens);
  const keyPosition = start + Math.round(options.depth * (haystack - (k + 1)));
  const answer = options.needle.map((v) => FIRST_NEEDLE_ID + v);
  const ids: number[] = bos ? [BOS_ID] : [];
  while (ids.length < keyPosition) ids.push(filler());
  ids.push(KEY_ID, ...answer);
  while (ids.length < start + haystack + questionFillers) ids.push(filler());
  ids.push(KEY_ID);
  const words = recallVocabulary(layout);
  return { ids, text: ids.map((id) => words[id]).join(' '), keyPosition, answer };
}


/**
 * Checks a prompt against the protocol and returns the answer it asks for. The prompt's last
 * token is the question's key: KEY, or any needle token used as a key (as in multi-needle
 * haystacks `KEY c v1 .. vk` asked with `KEY c`). The key must occur exactly twice; the answer
 * is the run of needle tokens after its first occurrence, and each of those values must occur
 * once in the prompt. Throws, naming the broken rule, when the model would not be guaranteed
 * to answer.
 */
export function expectedAnswer(layout: RecallLayout, ids: readonly number[]): number[] {
  const key = ids[ids.length - 1];
  const isNeedle = (id: number) => tokenClass(layout, id) > 0 && tokenClass(layout, id) < layout.codes;
  if (key === undefined || !(key === KEY_ID || isNeedle(key))) {
    throw new RangeError('recall prompt: the last token must be KEY or a needle token (the question\'s key)');
  }
  const occurrences = ids.flatMap((id, i) => (id === key ? [i] : []));
  if (occurrences.length !== 2) {
    throw new RangeError(`recall prompt: the question's key must occur exactly twice (needle and question), found ${occurrences.length}`);
  }
  const answer: number[] = [];
  for (let i = (occurrences[0] as number) + 1; i < ids.length && isNeedle(ids[i] as number); i++) answer.push(ids[i] as number);
  if (answer.length === 0) throw new RangeError("recall prompt: the key's first occurrence must be followed by at least one needle token");
  for (const v of answer) {
    const count = ids.filter((id) => id === v).length;
    if (count !== 1) throw new RangeError(`recall prompt: needle value id ${v} occurs ${count} times; values must be unique in the prompt`);
  }
  if (ids.length + answer.length + 1 > layout.maxPositions) throw new RangeError('recall prompt: prompt plus answer exceed max positions');
  return answer;
}

/** The full greedy continuation the model produces for a valid prompt: the answer then `</s>`. */
export function expectedContinuation(layout: RecallLayout, ids: readonly number[]): number[] {
  return [...expectedAnswer(layout, ids), EOS_ID];
}
