/**
 * How long a document may be, and how many cache rows its fold needs: the one rule behind
 * `kvfold fold`, `kvfold run` and the queue worker.
 *
 * A full-policy fold gives every document token a position, then every question reads after the
 * folded document and generates its answer there (the last generated token is never fed back:
 * fold-core's `generationRows`). So a document of n tokens needs n + the longest question's rows
 * positions, and the model has `maxPositions`. A streaming fold assigns positions within its
 * bounded cache, so only the batch's own limit applies.
 */
import { batchGenerationRows, generationRows, type KvPolicy } from '@kvfold/fold-core';
import { DocumentError, DocumentErrorCode } from './failures.ts';

export interface LimitSettings {
  /** The batch's limit (`maxTokensPerDocument`); absent for `kvfold fold`, which has no batch. */
  readonly maxTokensPerDocument?: number;
  readonly maxNewTokens: number;
  /** Token counts of the encoded questions. */
  readonly questionTokens: readonly number[];
  /** False for the streaming policy, whose positions stay within its window. */
  readonly positionsGrow: boolean;
  /** Fold past the model's positions with a warning instead of refusing (`kvfold fold --beyond-max-positions`). */
  readonly beyondMaxPositions?: boolean;
}

export interface DocumentLimits {
  /** Rows the longest question and its answer add after the folded document. */
  readonly answerRows: number;
  /** The model's trained positions (max_position_embeddings). */
  readonly maxPositions: number;
  /** The most document tokens allowed: the batch's limit and, where positions grow, the positions the answers leave. */
  readonly maxTokens: number;
  /** Which limit `maxTokens` is: the batch's, the model's positions, or none. */
  readonly boundBy: 'batch' | 'positions' | 'none';
}

export function documentLimits(maxPositions: number, settings: LimitSettings): DocumentLimits {
  const answerRows = Math.max(0, ...settings.questionTokens.map((n) => generationRows(n, settings.maxNewTokens)));
  const byPositions = settings.positionsGrow && !settings.beyondMaxPositions ? Math.max(0, maxPositions - answerRows) : Number.POSITIVE_INFINITY;
  const byBatch = settings.maxTokensPerDocument ?? Number.POSITIVE_INFINITY;
  const maxTokens = Math.min(byBatch, byPositions);
  return { answerRows, maxPositions, maxTokens, boundBy: !Number.isFinite(maxTokens) ? 'none' : byBatch <= byPositions ? 'batch' : 'positions' };
}

/**
 * Refuses a document of `tokens` tokens that the limits do not allow, naming it (`name`) and what to
 * do; returns the warnings of a fold allowed past the model's positions.
 */
export function checkLength(tokens: number, limits: DocumentLimits, settings: LimitSettings, name: string): string[] {
  if (tokens === 0) throw new DocumentError(DocumentErrorCode.Empty, `${name} has no tokens: there is nothing to fold`);
  const batchLimit = settings.maxTokensPerDocument;
  if (batchLimit !== undefined && tokens > batchLimit) {
    throw new DocumentError(DocumentErrorCode.TooLong, `${name} has ${tokens} tokens, over the batch's limit of ${batchLimit} (maxTokensPerDocument); split it or raise the limit`);
  }
  const needed = tokens + limits.answerRows;
  if (!settings.positionsGrow || needed <= limits.maxPositions) return [];
  const msg = `${name} needs ${needed} positions (${tokens} document tokens + ${limits.answerRows} for the longest question and its answer) but the model was trained for ${limits.maxPositions} (max_position_embeddings)`;
  if (settings.beyondMaxPositions) return [`${msg}; positions beyond it are extrapolated`];
  throw new DocumentError(DocumentErrorCode.TooLong, `${msg}; split it, shorten the questions or answers, or use the streaming policy`);
}

/**
 * Rows a cache needs to fold `tokens` tokens in chunks of `chunkSize` under `policy`, then answer
 * `questionTokens`' questions, `together` at a time (1 for a model that cannot pack steps): all of
 * it reserved before the fold, so a batch the memory cannot hold is refused before any allocation.
 */
export function cacheRows(policy: KvPolicy, tokens: number, chunkSize: number, answers: { questionTokens: readonly number[]; maxNewTokens: number; together: number }): number {
  return policy.rows(tokens, chunkSize, batchGenerationRows(answers.questionTokens, answers.maxNewTokens, answers.together));
}
