/**
 * The KV cache port: the accumulator of the fold, owned by whoever runs the model.
 *
 * A model adapter creates its caches (`DecoderModel.createCache`) where its session runs — a
 * worker thread, a GPU — and updates them in place as steps run; the fold never holds a copy.
 * The operations mirror onnxruntime-genai's KeyValueCache (Add, Update, RewindTo): a step appends
 * its rows, `mark`/`rewind` let every question start from the folded state without copying it,
 * `read` copies out a range (a checkpoint segment), `append` loads rows back (resume), and the
 * policies' in-place edit (`evict`) lives here too. An impossible request is refused,
 * never clamped.
 */
import type { KvLayout, KvRows } from './kv-layout.ts';

/** Where positions stand. */
export interface KvPositions {
  /** Position id the next token gets (equal to `length` unless a policy says otherwise). */
  readonly nextPosition: number;
  /** Tokens read so far, evicted ones included. */
  readonly tokensSeen: number;
}

/** A point to return to: the cache's length and positions at `mark()`. */
export interface KvMark extends KvPositions {
  readonly length: number;
}

export interface KvCache extends KvPositions {
  readonly layout: KvLayout;
  /** Rows held: the attention context of the next step. */
  readonly length: number;
  /** Rows the cache holds room for before it has to grow. */
  readonly capacity: number;
  /** Bytes of the rows held (`length` x row bytes). */
  readonly bytes: number;
  /** Bytes allocated (`capacity` x row bytes). */
  readonly allocatedBytes: number;

  /** Makes room for `rows` rows in all, growing once instead of step by step. Never shrinks. */
  reserve(rows: number): Promise<void>;
  /** A copy of rows [from, to) of every layer. */
  read(from: number, to: number): Promise<KvRows>;
  /**
   * Appends rows (e.g. read back from a checkpoint); positions then stand at `positions`, or
   * advance by the rows. The cache may take the rows' buffers over (an adapter in another thread
   * moves them instead of copying): do not use them afterwards.
   */
  append(rows: KvRows, positions?: KvPositions): Promise<void>;
  /** The current length and positions. */
  mark(): KvMark;
  /** Drops every row after `mark`. Refuses a mark beyond the rows held. */
  rewind(mark: KvMark): Promise<void>;
  /**
   * Removes rows [from, from + count): later rows move down `count` places and their keys (cached
   * already rotated) turn by -count positions under RoPE with `invFreq`; `nextPosition` drops by
   * `count`. StreamingLLM's eviction.
   */
  evict(from: number, count: number, invFreq: Float64Array): Promise<void>;
  /** Frees the cache; any later operation is refused. */
  release(): Promise<void>;
}

/** The mark of an empty cache. */
export const EMPTY_MARK: KvMark = { length: 0, nextPosition: 0, tokensSeen: 0 };
