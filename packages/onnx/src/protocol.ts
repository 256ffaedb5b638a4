/** Messages between an OnnxDecoder and its session worker thread. */

export interface IoNames {
  readonly inputIds: string;
  readonly attentionMask: string | null;
  readonly positionIds: string | null;
  readonly pastKeyValues: readonly { key: string; value: string }[]; // [layers]
  readonly presents: readonly { key: string; value: string }[]; // [layers]
  readonly logits: string;
}

export type Device = 'cpu' | 'webgpu' | 'cuda';

export type WorkerRequest =
  | { type: 'init'; onnxPath: string; device: Device; threads?: number }
  | {
      type: 'step';
      id: number;
      names: IoNames;
      tokens: Int32Array; // [n]
      position: number;
      pastLength: number;
      kvHeads: number;
      headDim: number;
      kvType: 'float32' | 'float16';
      /**
       * The past, or null when it is exactly the cache the worker kept from the previous step
       * (that step's past plus its new rows), which the worker then feeds itself.
       */
      past: { key: Float32Array | Uint16Array; value: Float32Array | Uint16Array }[] | null; // [layers][kvHeads, past, headDim]
      logits: 'all' | 'last' | 'none';
    }
  | { type: 'close' };

export interface IoMeta {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

export type WorkerReply =
  | { type: 'ready'; inputs: IoMeta[]; outputs: IoMeta[] }
  | {
      type: 'result';
      id: number;
      logits: Float32Array;
      rows: { key: Float32Array | Uint16Array; value: Float32Array | Uint16Array }[]; // [layers][kvHeads, n, headDim]
      ms: number;
    }
  | { type: 'error'; id: number; message: string }
  | { type: 'closed' };
