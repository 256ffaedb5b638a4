/**
 * BullMQ wiring: queue and job names, the key prefix, and one factory for the queues and the
 * FlowProducer every app uses.
 */
import { FlowProducer, Queue } from 'bullmq';
import type { ConnectionOptions } from 'bullmq';

/** Queue names. Documents are folded by workers; batches are the flow parents that finalize. */
export const QUEUE_NAMES = {
  documents: 'kvfold-documents',
  batches: 'kvfold-batches',
} as const;

/** Job names inside those queues. */
export const JOB_NAMES = {
  foldDocument: 'fold-document',
  finalizeBatch: 'finalize-batch',
  /** A batch's enqueue gate (batchGateJobId), in the batches queue: never processed. */
  enqueueGate: 'enqueue-gate',
} as const;

/**
 * Default key prefix. The braces are a Redis Cluster hash tag: only `kvfold` is hashed, so every
 * key of every KV-Fold queue lands in one slot. BullMQ's Lua scripts touch several keys per call,
 * and a flow links a child in the documents queue to its parent in the batches queue; in a
 * cluster, keys of one script must share a slot or Redis answers CROSSSLOT.
 */
export const DEFAULT_QUEUE_PREFIX = '{kvfold}';

/** The queues and flow producer of one prefix, and a way to close all of them. */
export interface KvfoldQueues {
  readonly prefix: string;
  /** One job per document (children of the batch flow). */
  readonly documents: Queue;
  /** One job per batch (flow parents). */
  readonly batches: Queue;
  readonly flow: FlowProducer;
  close(): Promise<void>;
}

/**
 * Creates the documents queue, the batches queue and a FlowProducer on `connection`
 * (options, e.g. from `redisOptionsFromUrl`, or a client) under `prefix`.
 */
export function createQueues(connection: ConnectionOptions, prefix = DEFAULT_QUEUE_PREFIX): KvfoldQueues {
  const documents = new Queue(QUEUE_NAMES.documents, { connection, prefix });
  const batches = new Queue(QUEUE_NAMES.batches, { connection, prefix });
  const flow = new FlowProducer({ connection, prefix });
  return {
    prefix,
    documents,
    batches,
    flow,
    async close() {
      await Promise.all([documents.close(), batches.close(), flow.close()]);
    },
  };
}
