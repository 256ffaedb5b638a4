/**
 * FoldMetrics: fleet-wide fold counters that workers write to Redis and the API exposes to
 * Prometheus at scrape time. Workers come and go (spot hosts, autoscaling) and are often not
 * scrapeable; one Redis hash outlives them, so the totals are monotonic for the whole fleet.
 *
 *     <prefix>:metrics:fold   HASH
 *       tokens                   tokens folded, all workers           -> kvfold_fold_tokens_total
 *       checkpoint_bytes         checkpoint bytes uploaded            -> kvfold_checkpoint_bytes_total
 *       step_count, step_sum     fold steps and their summed seconds  -> kvfold_fold_step_seconds (histogram)
 *       step_le:<bound>          steps that took <= bound seconds (non-cumulative; '+Inf' last)
 *       documents:<status>       documents finished, by status        -> kvfold_documents_total{status}
 *
 * Worker usage: `const metrics = new FoldMetrics(redis, { prefix })`, then after each fold step
 * `await metrics.recordStep(seconds, tokensInStep)`, after each checkpoint commit
 * `await metrics.recordCheckpoint(bytes)`, and when a document ends `await metrics.recordDocument(status)`.
 */
import type { Redis } from 'ioredis';
import { DEFAULT_QUEUE_PREFIX } from './queues.ts';

/**
 * Upper bounds (seconds) of the step-latency buckets: a tiny model's step is milliseconds on a CPU,
 * an 8B model's step at 128K context is tens of seconds on a GPU.
 */
export const FOLD_STEP_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/** What the fleet has folded, read back in one call. */
export interface FoldMetricsSnapshot {
  readonly tokens: number;
  readonly checkpointBytes: number;
  readonly steps: {
    readonly count: number;
    readonly sum: number;
    /** Cumulative counts per upper bound, ending with `+Inf` (= count). */
    readonly buckets: ReadonlyArray<{ readonly le: string; readonly count: number }>;
  };
  readonly documents: Readonly<Record<string, number>>;
}

/** Records and reads the fleet's fold metrics. */
export class FoldMetrics {
  readonly key: string;
  readonly #redis: Redis;

  constructor(redis: Redis, options: { readonly prefix?: string } = {}) {
    this.#redis = redis;
    this.key = `${options.prefix ?? DEFAULT_QUEUE_PREFIX}:metrics:fold`;
  }

  /** One fold step of `tokens` tokens that took `seconds`. */
  async recordStep(seconds: number, tokens: number): Promise<void> {
    const s = Math.max(0, seconds);
    const bound = FOLD_STEP_BUCKETS.find((b) => s <= b);
    await this.#redis
      .multi()
      .hincrby(this.key, 'tokens', Math.max(0, Math.round(tokens)))
      .hincrby(this.key, 'step_count', 1)
      .hincrbyfloat(this.key, 'step_sum', s)
      .hincrby(this.key, `step_le:${bound === undefined ? '+Inf' : String(bound)}`, 1)
      .exec();
  }

  /** A checkpoint commit that uploaded `bytes`. */
  async recordCheckpoint(bytes: number): Promise<void> {
    await this.#redis.hincrby(this.key, 'checkpoint_bytes', Math.max(0, Math.round(bytes)));
  }

  /** A document that ended with `status` (completed, failed, cancelled). */
  async recordDocument(status: string): Promise<void> {
    await this.#redis.hincrby(this.key, `documents:${status}`, 1);
  }

  /** The current totals. */
  async read(): Promise<FoldMetricsSnapshot> {
    const hash = await this.#redis.hgetall(this.key);
    const n = (field: string) => Number(hash[field] ?? 0);
    let running = 0;
    const buckets = FOLD_STEP_BUCKETS.map((bound) => {
      running += n(`step_le:${bound}`);
      return { le: String(bound), count: running };
    });
    running += n('step_le:+Inf');
    buckets.push({ le: '+Inf', count: running });
    const documents: Record<string, number> = {};
    for (const [field, value] of Object.entries(hash)) {
      if (field.startsWith('documents:')) documents[field.slice('documents:'.length)] = Number(value);
    }
    return {
      tokens: n('tokens'),
      checkpointBytes: n('checkpoint_bytes'),
      steps: { count: n('step_count'), sum: n('step_sum'), buckets },
      documents,
    };
  }

  /** Deletes the hash (tests). */
  async reset(): Promise<void> {
    await this.#redis.del(this.key);
  }
}
