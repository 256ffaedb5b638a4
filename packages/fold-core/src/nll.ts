/** Negative log-likelihood from logits, in float64 with a stable log-sum-exp. */

/** -log softmax(row)[target] for one row of logits. */
export function tokenNll(logits: Float32Array, row: number, vocab: number, target: number): number {
  const base = row * vocab;
  let max = Number.NEGATIVE_INFINITY;
  for (let v = 0; v < vocab; v++) max = Math.max(max, logits[base + v] as number);
  let sum = 0;
  for (let v = 0; v < vocab; v++) sum += Math.exp((logits[base + v] as number) - max);
  return Math.log(sum) + max - (logits[base + target] as number);
}

/** Index of the largest logit of a row (the first one on ties), i.e. the greedy choice. */
export function argmax(logits: Float32Array, row: number, vocab: number): number {
  const base = row * vocab;
  let best = 0;
  let bestValue = logits[base] as number;
  for (let v = 1; v < vocab; v++) {
    const x = logits[base + v] as number;
    if (x > bestValue) {
      bestValue = x;
      best = v;
    }
  }
  return best;
}
