/** Messages between an OnnxDecoder (main thread) and its session thread. */
import type { KvDtype, KvMark, KvPositions, KvRows, LogitsMode } from '@kvfold/fold-core';
import type { FoldPlan } from './fold-graph.ts';
import type { IoMeta, ShapeConfig } from './io-names.ts';

export type { IoMeta, IoNames } from './io-names.ts';

export type Device = 'cpu' | 'webgpu' | 'cuda';

/**
 * Which graph a session runs: `auto` (the fold graph on the CPU, the resident graph on a device,
 * where they can be derived), `resident` (presents fed back as returned, on any device), or the
 * export as it is (`standard`).
 */
export type FoldGraphChoice = 'auto' | 'resident' | 'standard';

/** One slot of a packed step (packed-attention.ts): a cache and the tokens of its sequences. */
export interface PackedFeeds {
  readonly positions: Int32Array; // [S]
  readonly prefixRows: number;
  /** [S, R]: 0 where a token reads a row of its own, the lowest float elsewhere (R = cache rows past the prefix + S). */
  readonly bias: Float32Array;
  readonly logitsAt: Int32Array; // [k]
}

export interface PackedSlot extends PackedFeeds {
  readonly cacheId: number;
  readonly tokens: Int32Array;
}

/** A cache's counters after an operation, mirrored by its handle on the main thread. */
export interface CacheState extends KvPositions {
  readonly length: number;
  readonly capacity: number;
}

export type CacheOp =
  | { readonly op: 'create'; readonly capacity: number }
  | { readonly op: 'reserve'; readonly rows: number }
  | { readonly op: 'read'; readonly from: number; readonly to: number }
  | { readonly op: 'append'; readonly rows: KvRows; readonly positions?: KvPositions }
  | { readonly op: 'rewind'; readonly mark: KvMark }
  | { readonly op: 'evict'; readonly from: number; readonly count: number; readonly invFreq: Float64Array }
  /** A mark was taken (a resident session pins the presents of this moment). */
  | { readonly op: 'mark' }
  | { readonly op: 'release' };

export type WorkerRequest =
  | {
      readonly type: 'init';
      readonly id: number;
      readonly onnxPath: string;
      readonly device: Device;
      readonly threads?: number;
      readonly config: ShapeConfig;
      readonly foldGraph: FoldGraphChoice;
      /** The width to hold caches at; absent: the export's. */
      readonly kvDtype?: KvDtype;
      /** Caches one packed step can read (fold-graph.ts's DeriveOptions.slots); absent: 1. */
      readonly slots?: number;
    }
  | { readonly type: 'cache'; readonly id: number; readonly cacheId: number; readonly op: CacheOp }
  | { readonly type: 'step'; readonly id: number; readonly cacheId: number; readonly tokens: Int32Array; readonly logits: LogitsMode }
  /** One session run over several slots, each a cache (distinct) and its tokens. */
  | { readonly type: 'packed'; readonly id: number; readonly slots: readonly PackedSlot[] }
  | { readonly type: 'close'; readonly id: number };

export type WorkerReply =
  | { readonly type: 'ready'; readonly id: number; readonly inputs: IoMeta[]; readonly outputs: IoMeta[]; readonly plan: FoldPlan }
  | { readonly type: 'done'; readonly id: number; readonly state: CacheState; readonly rows?: KvRows }
  | {
      readonly type: 'result';
      readonly id: number;
      readonly logits: Float32Array;
      readonly state: CacheState;
      /** Bytes the session thread's own code copied: inputs built, rows appended, logits taken. */
      readonly copiedBytes: number;
      /** Bytes onnxruntime-node copied out of the session for the outputs fetched. */
      readonly outputBytes: number;
      readonly ms: number;
    }
  | {
      readonly type: 'packed-result';
      readonly id: number;
      /** Each slot's logits (its `logitsAt` rows) and its cache's counters, in the request's order. */
      readonly slots: readonly { readonly logits: Float32Array; readonly state: CacheState }[];
      readonly copiedBytes: number;
      readonly outputBytes: number;
      readonly ms: number;
    }
  | { readonly type: 'error'; readonly id: number; readonly message: string; readonly code?: string; readonly kind: 'kv' | 'model' | 'range' | 'other' }
  | { readonly type: 'closed'; readonly id: number };
