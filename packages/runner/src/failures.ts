/**
 * Which errors end a document and which are tried again: the one table behind the queue worker and
 * `kvfold run` (both fold through processDocument()).
 *
 * A permanent error is a property of the document, the batch's settings or the model: the same
 * attempt on any worker would fail the same way, so the document fails now with a result that says
 * why, and the batch goes on. A transient error is a property of this moment or this machine (a
 * store or Redis that does not answer, a device that is busy, a runtime crash): it is thrown, and the
 * caller's retry policy (BullMQ's attempts, the next `kvfold run`) tries again from the last
 * checkpoint. A code this table does not know is transient: retries are bounded, a wrongly failed
 * document is not.
 *
 * | source code                  | class     | the document's result                                  |
 * |------------------------------|-----------|--------------------------------------------------------|
 * | KVF_CORPUS_DIGEST_MISMATCH   | permanent | KVF_DOC_UNREADABLE: the shard's bytes are not the document |
 * | KVF_CORPUS_NOT_UTF8          | permanent | KVF_DOC_UNREADABLE                                     |
 * | KVF_MODEL_NOT_FOUND          | permanent | KVF_DOC_MODEL: the batch names a model that is not there |
 * | KVF_MODEL_MALFORMED          | permanent | KVF_DOC_MODEL                                          |
 * | KVF_MODEL_NOT_A_DECODER      | permanent | KVF_DOC_MODEL                                          |
 * | KVF_MODEL_NO_CHAT_TEMPLATE   | permanent | KVF_DOC_MODEL: the batch asks `chat` of a model without a template |
 * | KVF_KV_NO_MEMORY             | permanent | KVF_DOC_NO_MEMORY: the document's cache does not fit this fleet |
 * | KVF_DOC_* (DocumentError: too long, empty, policy, question) | permanent | itself            |
 * | KVF_MODEL_DEVICE, KVF_MODEL_RUNTIME, KVF_MODEL_CLOSED | transient | (thrown)                       |
 * | KVF_STORE_* , KVF_CKPT_*, anything else | transient | (thrown)                                   |
 */
import { CheckpointErrorCode } from '@kvfold/checkpoint';
import { KvCacheErrorCode } from '@kvfold/fold-core';
import { ModelErrorCode } from '@kvfold/onnx';
import { ProducerErrorCode } from '@kvfold/producer';
import { StoreErrorCode } from '@kvfold/storage';

/** The codes a failed document's result carries (`result.error.code`). */
export const DocumentErrorCode = {
  TooLong: 'KVF_DOC_TOO_LONG',
  Empty: 'KVF_DOC_EMPTY',
  Unreadable: 'KVF_DOC_UNREADABLE',
  Model: 'KVF_DOC_MODEL',
  NoMemory: 'KVF_DOC_NO_MEMORY',
  Policy: 'KVF_DOC_POLICY',
  Question: 'KVF_DOC_QUESTION',
} as const;

export type DocumentErrorCode = (typeof DocumentErrorCode)[keyof typeof DocumentErrorCode];

/** A document that cannot be folded as asked (too long, empty, a policy the model refuses): it fails alone. */
export class DocumentError extends Error {
  override readonly name = 'DocumentError';
  constructor(
    readonly code: DocumentErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export type Verdict = { readonly kind: 'permanent'; readonly as: DocumentErrorCode } | { readonly kind: 'transient' };

const permanent = (as: DocumentErrorCode): Verdict => ({ kind: 'permanent', as });
const TRANSIENT: Verdict = { kind: 'transient' };

/** Every code a document's processing can meet, and what it means for the document. */
export const FAILURE_TABLE: Readonly<Record<string, Verdict>> = {
  [ProducerErrorCode.DigestMismatch]: permanent(DocumentErrorCode.Unreadable),
  [ProducerErrorCode.NotUtf8]: permanent(DocumentErrorCode.Unreadable),
  [ModelErrorCode.NotFound]: permanent(DocumentErrorCode.Model),
  [ModelErrorCode.Malformed]: permanent(DocumentErrorCode.Model),
  [ModelErrorCode.NotADecoder]: permanent(DocumentErrorCode.Model),
  [ModelErrorCode.NoChatTemplate]: permanent(DocumentErrorCode.Model),
  [ModelErrorCode.Device]: TRANSIENT,
  [ModelErrorCode.Runtime]: TRANSIENT,
  [ModelErrorCode.Closed]: TRANSIENT,
  [KvCacheErrorCode.NoMemory]: permanent(DocumentErrorCode.NoMemory),
  ...Object.fromEntries(Object.values(DocumentErrorCode).map((code) => [code, permanent(code)])),
  ...Object.fromEntries(Object.values(StoreErrorCode).map((code) => [code, TRANSIENT])),
  ...Object.fromEntries(Object.values(CheckpointErrorCode).map((code) => [code, TRANSIENT])),
};

/** The verdict on an error thrown while processing a document (by its `code`; unknown is transient). */
export function classifyFailure(err: unknown): Verdict {
  const code = (err as { code?: unknown } | null)?.code;
  return (typeof code === 'string' && FAILURE_TABLE[code]) || TRANSIENT;
}
