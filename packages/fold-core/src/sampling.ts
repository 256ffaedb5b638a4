/**
 * Picking the next token from a row of logits: greedy (the default), or sampled as Hugging Face's
 * generate does — logits / temperature, then the `topK` most likely, then the smallest set whose
 * probability reaches `topP` (nucleus), then a draw from a seeded generator. All in float64.
 */
import { argmax } from './nll.ts';
import { seededRandom } from './random.ts';

export interface SamplingOptions {
  /** > 0. */
  readonly temperature: number;
  /** Keep the k most likely tokens (0 or absent: all). */
  readonly topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p, in (0, 1] (absent: 1). */
  readonly topP?: number;
  /** Seed of the generator: the same seed gives the same answer. */
  readonly seed: number;
}

/** Picks token ids from logits rows. */
export type TokenPicker = (logits: Float32Array, row: number, vocab: number) => number;

export const greedy: TokenPicker = argmax;

/** Checks sampling options, naming the one that is wrong. */
export function checkSampling(o: SamplingOptions): void {
  if (!(Number.isFinite(o.temperature) && o.temperature > 0)) throw new RangeError(`temperature must be a number > 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) throw new RangeError(`top-k must be an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) throw new RangeError(`top-p must be in (0, 1], got ${o.topP}`);
  if (!Number.isInteger(o.seed)) throw new RangeError(`seed must be an integer, got ${o.seed}`);
}

/** A seeded sampler; its draws are its own, so one question's answer does not depend on another's. */
export function sampler(o: SamplingOptions): TokenPicker {
  checkSampling(o);
  const random = seededRandom(o.seed);
  return (logits, row, vocab) => {
    const base = row * vocab;
    const order = Array.from({ length: vocab }, (_, v) => v).sort((a, b) => (logits[base + b] as number) - (logits[base + a] as number) || a - b);
    const k = o.topK ? Math.min(o.topK, vocab) : vocab;
    const top = (logits[base + (order[0] as number)] as number) / o.temperature;
    const weights: number[] = [];
    let sum = 0;
    for (let i = 0; i < k; i++) {
      const w = Math.exp((logits[base + (order[i] as number)] as number) / o.temperature - top);
      weights.push(w);
      sum += w;
    }
    // Nucleus: the smallest prefix of the sorted tokens whose probability reaches topP.
    let kept = weights.length;
    if (o.topP !== undefined && o.topP < 1) {
      let acc = 0;
      for (let i = 0; i < weights.length; i++) {
        acc += (weights[i] as number) / sum;
        if (acc >= o.topP) {
          kept = i + 1;
          break;
        }
      }
    }
    let total = 0;
    for (let i = 0; i < kept; i++) total += weights[i] as number;
    let x = random() * total;
    for (let i = 0; i < kept; i++) {
      x -= weights[i] as number;
      if (x < 0) return order[i] as number;
    }
    return order[kept - 1] as number;
  };
}
