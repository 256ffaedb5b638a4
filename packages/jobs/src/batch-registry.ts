/**
 * BatchRegistry: the batch records, states, cancel flags and per-batch counters, in Redis beside
 * the queues. Keys share the queue prefix (`{kvfold}` by default), so in Redis Cluster they hash to
 * the same slot as the BullMQ keys:
 *
 *     <prefix>:registry:batch:<batchId>        HASH  record (JSON), state, updatedAt,
 *                                                     cancelRequestedAt, n.<outcome>, tokens, bytes
 *     <prefix>:registry:batch:<batchId>:docs   HASH  docId -> outcome (each document counted once;
 *                                                     dropped when the batch ends, counters stay)
 *
 * The registry is an index, not the source of truth: the object store holds every batch's record
 * and results (result-keys.ts), and `restore` rebuilds an entry from them (batch-store.ts). So an
 * ended batch's entry expires (`endedTtlS`, a week by default) and comes back on demand.
 *     <prefix>:registry:batches                ZSET  every batch as `<createdAt ms, 15 digits>:<batchId>`,
 *                                                     all at score 0, so lexical order is creation order
 *
 * Every mutation is one Lua script, so concurrent workers and API replicas never lose an update
 * and BullMQ's at-least-once delivery never counts a document twice.
 */
import type { Redis } from 'ioredis';
import { BATCH_STATES, BatchRecord, DocumentOutcomeStatus, MAX_BATCH_PAGE, TERMINAL_STATES, predecessorsOf } from '@kvfold/contract';
import type { BatchCounters, BatchRecordInput, BatchState, DocumentOutcome } from '@kvfold/contract';
import { JobsError, JobsErrorCode } from './errors.ts';
import { DEFAULT_QUEUE_PREFIX } from './queues.ts';

/** A batch as the registry holds it. */
export interface BatchEntry {
  readonly record: BatchRecord;
  readonly state: BatchState;
  readonly updatedAt: string;
  /** When cancel was asked, if it was. */
  readonly cancelRequestedAt?: string;
  readonly counters: BatchCounters;
}

/** Creates the hash when absent and lists it in the index KEYS[2]; returns 1 when created. */
const CREATE = `
if redis.call('HSETNX', KEYS[1], 'record', ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'state', ARGV[2], 'updatedAt', ARGV[3])
  redis.call('ZADD', KEYS[2], 0, ARGV[4])
  return 1
end
return 0`;

/**
 * Sets state ARGV[1] when the current state is one of ARGV[5..]; returns the state after. When
 * ARGV[4] is '1' (the new state is terminal) the docs hash KEYS[2] goes and the entry expires in
 * ARGV[3] seconds.
 */
const TRANSITION = `
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return false end
if current == ARGV[1] then return current end
for i = 5, #ARGV do
  if ARGV[i] == current then
    redis.call('HSET', KEYS[1], 'state', ARGV[1], 'updatedAt', ARGV[2])
    if ARGV[4] == '1' then
      redis.call('DEL', KEYS[2])
      redis.call('EXPIRE', KEYS[1], ARGV[3])
    end
    return ARGV[1]
  end
end
return current`;

/**
 * Writes a whole entry: KEYS[1] batch hash, KEYS[2] docs hash, KEYS[3] index. ARGV[1] '1' to leave
 * an existing entry alone, ARGV[2] index member, ARGV[3] ttl seconds or '0' for none, ARGV[4]
 * the number n of hash field/value pairs, then those pairs, then docId/outcome pairs. Returns 1
 * when written.
 */
const RESTORE = `
if ARGV[1] == '1' and redis.call('HEXISTS', KEYS[1], 'record') == 1 then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
local n = tonumber(ARGV[4])
for i = 5, 4 + 2 * n, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for i = 5 + 2 * n, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[3], 0, ARGV[2])
if ARGV[3] ~= '0' then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1`;

/** Flags cancel and moves to cancelling unless terminal (ARGV[2..]); returns the state after. */
const CANCEL = `
local current = redis.call('HGET', KEYS[1], 'state')
if not current then return false end
for i = 2, #ARGV do
  if ARGV[i] == current then return current end
end
redis.call('HSETNX', KEYS[1], 'cancelRequestedAt', ARGV[1])
redis.call('HSET', KEYS[1], 'state', 'cancelling', 'updatedAt', ARGV[1])
return 'cancelling'`;

/**
 * Counts a document once: KEYS[1] batch hash, KEYS[2] docs hash; ARGV[5..] the terminal states, in
 * which nothing more is counted. Returns 1 when counted now.
 */
const RECORD_DOCUMENT = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return -1 end
for i = 5, #ARGV do
  if ARGV[i] == state then return 0 end
end
if redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'n.' .. ARGV[2], 1)
redis.call('HINCRBY', KEYS[1], 'tokens', ARGV[3])
redis.call('HINCRBY', KEYS[1], 'bytes', ARGV[4])
return 1`;

/** One page of batch ids, newest first. */
export interface BatchPage {
  readonly ids: readonly string[];
  /** Pass as `after` for the next page; null on the last. */
  readonly nextCursor: string | null;
}


/** Options of {@link BatchRegistry}. */
export interface BatchRegistryOptions {
  /** The queue prefix the batch's jobs live under (default `{kvfold}`). */
  readonly prefix?: string;
  /** Clock, for tests. */
  readonly now?: () => Date;
  /**
   * Seconds an ended batch's entry stays in Redis (default DEFAULT_ENDED_TTL_S); afterwards it is
   * rebuilt from the store when asked for.
   */
  readonly endedTtlS?: number;
}

/** An ended batch's registry entry lives a week: long enough for dashboards, short enough to stay small. */
export const DEFAULT_ENDED_TTL_S = 7 * 24 * 3600;

/** An entry as `restore` writes it: the record, the state, and each document's outcome so far. */
export interface EntrySnapshot {
  readonly record: BatchRecordInput;
  readonly state: BatchState;
  readonly cancelRequestedAt?: string;
  /** docId -> outcome and tokens, for the documents that ended. */
  readonly outcomes: ReadonlyMap<string, { readonly status: DocumentOutcomeStatus; readonly tokens: number; readonly bytes: number }>;
  /** The counters, when known without the outcomes (an ended batch's summary); they win over `outcomes`. */
  readonly counters?: BatchCounters;
}

/** Batch records and lifecycle in Redis. One instance per Redis client; cheap to create. */
export class BatchRegistry {
  readonly prefix: string;
  readonly #redis: Redis;
  readonly #now: () => Date;
  readonly endedTtlS: number;

  constructor(redis: Redis, options: BatchRegistryOptions = {}) {
    this.#redis = redis;
    this.prefix = options.prefix ?? DEFAULT_QUEUE_PREFIX;
    this.#now = options.now ?? (() => new Date());
    this.endedTtlS = options.endedTtlS ?? DEFAULT_ENDED_TTL_S;
    if (!Number.isSafeInteger(this.endedTtlS) || this.endedTtlS < 1) {
      throw new JobsError(JobsErrorCode.InvalidInput, `endedTtlS must be an integer >= 1 (seconds), got ${options.endedTtlS}`);
    }
  }

  /** The Redis key of a batch's hash. */
  key(batchId: string): string {
    return `${this.prefix}:registry:batch:${batchId}`;
  }

  /**
   * Stores a new batch in `state` (default `validating`). Idempotent: when the batch exists,
   * nothing changes and `created` is false.
   */
  async create(input: BatchRecordInput, state: BatchState = 'validating'): Promise<{ created: boolean; entry: BatchEntry }> {
    const record = BatchRecord.parse(input);
    const created = await this.#redis.eval(CREATE, 2, this.key(record.id), this.#indexKey(), JSON.stringify(record), state, this.#stamp(), indexMember(record));
    const entry = await this.get(record.id);
    if (!entry) throw new JobsError(JobsErrorCode.BatchNotFound, `batch ${record.id} vanished right after it was created`);
    return { created: created === 1, entry };
  }

  /** The batch, or null when unknown. */
  async get(batchId: string): Promise<BatchEntry | null> {
    const hash = await this.#redis.hgetall(this.key(batchId));
    if (!hash.record || !hash.state) return null;
    const state = hash.state as BatchState;
    if (!BATCH_STATES.includes(state)) {
      throw new JobsError(JobsErrorCode.BatchState, `batch ${batchId} has an unknown state ${JSON.stringify(hash.state)} in Redis`);
    }
    const n = (field: string) => Number(hash[field] ?? 0);
    return {
      record: BatchRecord.parse(JSON.parse(hash.record)),
      state,
      updatedAt: hash.updatedAt ?? '',
      ...(hash.cancelRequestedAt ? { cancelRequestedAt: hash.cancelRequestedAt } : {}),
      counters: {
        completed: n('n.completed'),
        failed: n('n.failed'),
        cancelled: n('n.cancelled'),
        removed: n('n.removed'),
        tokens: n('tokens'),
        bytes: n('bytes'),
      },
    };
  }

  /**
   * Moves the batch to `to` when that is a legal move from its current state (see batch-state.ts),
   * atomically. Returns the state after the call: `to`, or the unchanged current state when the
   * move was not legal (a worker finishing late never resurrects a cancelled batch).
   * Throws `KVF_BATCH_NOT_FOUND` for an unknown batch.
   */
  async setState(batchId: string, to: BatchState): Promise<BatchState> {
    const key = this.key(batchId);
    const ended = TERMINAL_STATES.has(to) ? '1' : '0';
    const after = await this.#redis.eval(TRANSITION, 2, key, `${key}:docs`, to, this.#stamp(), this.endedTtlS, ended, ...predecessorsOf(to));
    if (after === null) throw notFound(batchId);
    return after as BatchState;
  }

  /**
   * Writes a batch's whole entry from a snapshot (rebuilt from the store), replacing what is there;
   * with `onlyIfAbsent`, an entry that exists is left alone. Counters are derived from the
   * outcomes. One script, whatever the number of documents. Returns true when written.
   */
  async restore(snapshot: EntrySnapshot, options: { onlyIfAbsent?: boolean } = {}): Promise<boolean> {
    const record = BatchRecord.parse(snapshot.record);
    const derived = { completed: 0, failed: 0, cancelled: 0, removed: 0, tokens: 0, bytes: 0 };
    const docs: string[] = [];
    for (const [docId, outcome] of snapshot.outcomes) {
      derived[outcome.status] += 1;
      derived.tokens += wholeCount(outcome.tokens, 'tokens');
      derived.bytes += wholeCount(outcome.bytes, 'bytes');
      docs.push(docId, outcome.status);
    }
    const counts = snapshot.counters ?? derived;
    const fields: string[] = ['record', JSON.stringify(record), 'state', snapshot.state, 'updatedAt', this.#stamp()];
    if (snapshot.cancelRequestedAt) fields.push('cancelRequestedAt', snapshot.cancelRequestedAt);
    for (const status of DocumentOutcomeStatus.options) fields.push(`n.${status}`, String(wholeCount(counts[status], status)));
    fields.push('tokens', String(wholeCount(counts.tokens, 'tokens')), 'bytes', String(wholeCount(counts.bytes, 'bytes')));
    const ended = TERMINAL_STATES.has(snapshot.state);
    const key = this.key(record.id);
    const written = await this.#redis.eval(
      RESTORE,
      3,
      key,
      `${key}:docs`,
      this.#indexKey(),
      options.onlyIfAbsent ? '1' : '0',
      indexMember(record),
      ended ? this.endedTtlS : 0,
      fields.length / 2,
      ...fields,
      ...(ended ? [] : docs),
    );
    return written === 1;
  }

  /**
   * The worker's last word on a batch after finalizeBatch: `cancelled` when cancel was requested,
   * `completed` otherwise. Returns the state after.
   */
  async finish(batchId: string): Promise<BatchState> {
    // An ended batch counts nothing more: setState drops the per-document dedup set and sets the expiry.
    return this.setState(batchId, (await this.isCancelled(batchId)) ? 'cancelled' : 'completed');
  }

  /**
   * Requests cancellation: sets the cancel flag and moves to `cancelling`. A terminal batch is left
   * as it is. Returns the state after. Removing waiting jobs is the caller's part.
   */
  async requestCancel(batchId: string): Promise<BatchState> {
    const terminal = ['completed', 'failed', 'cancelled', 'finalizing'];
    const after = await this.#redis.eval(CANCEL, 1, this.key(batchId), this.#stamp(), ...terminal);
    if (after === null) throw notFound(batchId);
    return after as BatchState;
  }

  /** Whether cancel was requested. One HEXISTS: cheap enough for workers to ask between fold steps. */
  async isCancelled(batchId: string): Promise<boolean> {
    return (await this.#redis.hexists(this.key(batchId), 'cancelRequestedAt')) === 1;
  }

  /**
   * Counts one document's outcome into the batch counters, once per document however often it is
   * called, and not at all once the batch has ended (a delivery after the end is a duplicate).
   * Returns true when counted by this call. Throws `KVF_BATCH_NOT_FOUND` for an unknown batch.
   */
  async recordDocumentDone(batchId: string, outcome: DocumentOutcome): Promise<boolean> {
    const status = DocumentOutcomeStatus.parse(outcome.status);
    const tokens = wholeCount(outcome.tokens, 'tokens');
    const bytes = wholeCount(outcome.bytes, 'bytes');
    const key = this.key(batchId);
    const counted = await this.#redis.eval(RECORD_DOCUMENT, 2, key, `${key}:docs`, outcome.docId, status, tokens, bytes, ...TERMINAL_STATES);
    if (counted === -1) throw notFound(batchId);
    return counted === 1;
  }

  /**
   * Batch ids, newest first, `limit` (1..MAX_BATCH_PAGE) at a time; `after` is the previous page's
   * `nextCursor`. Paging is stable while batches are created: new ones only appear on page one.
   */
  async list(options: { limit: number; after?: string }): Promise<BatchPage> {
    const { limit, after } = options;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_BATCH_PAGE) {
      throw new JobsError(JobsErrorCode.InvalidInput, `limit must be an integer 1..${MAX_BATCH_PAGE}, got ${limit}`);
    }
    if (after !== undefined && !INDEX_MEMBER.test(after)) {
      throw new JobsError(JobsErrorCode.InvalidInput, `cursor ${JSON.stringify(after)} is not one this API gave out (pass nextCursor from the previous page)`);
    }
    const members = await this.#redis.zrevrangebylex(this.#indexKey(), after === undefined ? '+' : `(${after}`, '-', 'LIMIT', 0, limit + 1);
    const page = members.slice(0, limit);
    return {
      ids: page.map((m) => m.slice(m.indexOf(':') + 1)),
      nextCursor: members.length > limit ? (page.at(-1) ?? null) : null,
    };
  }

  /** Deletes a batch's registry keys and its index entry (tests and retention jobs). */
  async delete(batchId: string): Promise<void> {
    const key = this.key(batchId);
    const entry = await this.get(batchId);
    if (entry) await this.#redis.zrem(this.#indexKey(), indexMember(entry.record));
    await this.#redis.del(key, `${key}:docs`);
  }

  #indexKey(): string {
    return `${this.prefix}:registry:batches`;
  }

  #stamp(): string {
    return this.#now().toISOString();
  }
}


/** A batch's entry in the index: creation time, zero-padded so lexical order is time order, then its id. */
function indexMember(record: { id: string; createdAt: string }): string {
  return `${String(Date.parse(record.createdAt)).padStart(15, '0')}:${record.id}`;
}
const INDEX_MEMBER = /^\d{15}:b[0-9a-f]{32}$/;

function notFound(batchId: string): JobsError {
  return new JobsError(JobsErrorCode.BatchNotFound, `no batch ${batchId} in the registry (check the id)`);
}

function wholeCount(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new JobsError(JobsErrorCode.InvalidInput, `document outcome ${name} must be an integer >= 0, got ${value}`);
  }
  return value;
}
