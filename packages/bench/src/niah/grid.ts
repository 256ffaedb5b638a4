/**
 * The grid of a needle-in-a-haystack run, checked before any model step: lengths x depths x chunk
 * sizes, trials per cell, the KV policy, and how needles are packed into haystacks.
 *
 * A trial's `length` is the context it fills: document, question and answer together, so a 128K
 * trial never asks for a position past a 128K model's last. With `needlesPerHaystack` N > 1, the
 * `depths x trials` needles of a length are dealt to haystacks N at a time (cycling through the
 * depths), and every needle is asked from the same folded state: fold once, ask many.
 */
import type { KvWidth, PolicySpec } from '@kvfold/fold-core';
import { NiahError } from './errors.ts';
import type { NiahProtocol, ProtocolName } from './protocol.ts';
import { mixSeed } from './rng.ts';

export interface NiahGrid {
  /** Context lengths in tokens (document + question + answer). */
  readonly lengths: readonly number[];
  /** Needle depths in [0, 1]. */
  readonly depths: readonly number[];
  readonly chunkSizes: readonly number[];
  readonly policy: PolicySpec;
  /** The width the model's cache is held at (the caller loads the model so). */
  readonly kv: KvWidth;
  /** Trials per (length, depth, chunk size) cell. */
  readonly trials: number;
  readonly seed: number;
  /** Needles per haystack, each asked from the same folded state (1: the paper's protocol). */
  readonly needlesPerHaystack: number;
  /** `auto` picks recall when the vocabulary expresses it, else text. */
  readonly protocol: ProtocolName | 'auto';
  /** Values per recall needle, or digits of a text needle. */
  readonly needleSize?: number;
  /** Wrap text questions in the chat template. */
  readonly chat?: boolean;
  /** Tokens generated per answer (text protocol). */
  readonly maxNewTokens?: number;
}

/** One haystack of the plan: its length, its needles' depths, and the seed that writes it. */
export interface PlannedHaystack {
  readonly length: number;
  readonly index: number;
  readonly documentTokens: number;
  readonly depths: readonly number[];
  readonly seed: number;
}

const fail = (code: 'KVF_NIAH_BAD_GRID' | 'KVF_NIAH_TOO_LONG' | 'KVF_NIAH_BAD_POLICY', message: string): never => {
  throw new NiahError(code, message);
};

/** Checks the grid's numbers on their own (no model needed). */
export function checkGrid(grid: NiahGrid): void {
  const ints = (name: string, xs: readonly number[]) => {
    if (xs.length === 0) fail('KVF_NIAH_BAD_GRID', `${name} is empty; give at least one value`);
    for (const x of xs) if (!Number.isInteger(x) || x < 1) fail('KVF_NIAH_BAD_GRID', `${name}: ${x} is not an integer >= 1`);
  };
  ints('--lengths', grid.lengths);
  ints('--chunk-sizes', grid.chunkSizes);
  if (grid.depths.length === 0) fail('KVF_NIAH_BAD_GRID', '--depths is empty; give depths in [0, 1] such as 0,0.5,1');
  for (const d of grid.depths) {
    if (!(d >= 0 && d <= 1)) fail('KVF_NIAH_BAD_GRID', `--depths: ${d} is outside [0, 1] (0 puts the needle at the start of the haystack, 1 right before the question)`);
  }
  if (new Set(grid.depths).size !== grid.depths.length) fail('KVF_NIAH_BAD_GRID', `--depths ${grid.depths.join(',')} repeats a depth`);
  ints('--trials', [grid.trials]);
  ints('--needles-per-haystack', [grid.needlesPerHaystack]);
  if (grid.policy.kind === 'streaming') {
    const { sink, window } = grid.policy;
    if (!Number.isInteger(window) || window < 1) fail('KVF_NIAH_BAD_POLICY', '--policy streaming needs --window N (the recent tokens StreamingLLM keeps), e.g. --window 2048');
    if (!Number.isInteger(sink) || sink < 0) fail('KVF_NIAH_BAD_POLICY', `--sink must be an integer >= 0, got ${sink}`);
    const shortest = Math.min(...grid.lengths);
    if (sink + window >= shortest) {
      fail('KVF_NIAH_BAD_POLICY', `--window ${window} (+ --sink ${sink}) is not smaller than the length ${shortest}: StreamingLLM would evict nothing; use a window below ${shortest - sink} or longer lengths`);
    }
  }
}

/** Checks the grid against the model and the protocol, and deals the needles to haystacks. */
export function planHaystacks(grid: NiahGrid, protocol: NiahProtocol, maxPositions: number): PlannedHaystack[] {
  checkGrid(grid);
  for (const length of grid.lengths) {
    if (length > maxPositions) {
      fail('KVF_NIAH_TOO_LONG', `--lengths: ${length} tokens is beyond the model's ${maxPositions} positions (max_position_embeddings); use lengths up to ${maxPositions}`);
    }
  }
  const perHaystack = Math.min(grid.needlesPerHaystack, grid.depths.length * grid.trials);
  if (perHaystack > protocol.maxNeedles) {
    fail('KVF_NIAH_BAD_GRID', `--needles-per-haystack ${grid.needlesPerHaystack}: the ${protocol.name} protocol holds at most ${protocol.maxNeedles} distinct needles per haystack with this needle size`);
  }
  const deal = Array.from({ length: grid.trials * grid.depths.length }, (_, i) => grid.depths[i % grid.depths.length] as number);
  const plan: PlannedHaystack[] = [];
  for (const length of [...grid.lengths].sort((a, b) => a - b)) {
    const documentTokens = length - protocol.maxQuestionTokens - protocol.maxNewTokens;
    if (documentTokens < protocol.prefix.length + 1) fail('KVF_NIAH_BAD_GRID', `--lengths: ${length} tokens leaves no room for a haystack beside the question and answer`);
    for (let index = 0; index * perHaystack < deal.length; index++) {
      const depths = deal.slice(index * perHaystack, (index + 1) * perHaystack);
      plan.push({ length, index, documentTokens, depths, seed: mixSeed(grid.seed, length, index) });
    }
  }
  return plan;
}
