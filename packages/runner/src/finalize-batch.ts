/**
 * finalizeBatch(): the last step of a batch. Streams every document's result object into
 * `batches/<batchId>/results.jsonl`, one line per document in docId order, holding one result in
 * memory at a time. A document without a (valid) result object gets a stub line with its error,
 * so the file always has exactly one line per document. Then `summary.json` gets its counts, so the
 * batch's registry entry can be rebuilt from one object instead of every result.
 */
import { DocumentResult, ResultStub, batchResultsKey, documentResultKey, formatZodError } from '@kvfold/contract';
import { writeBatchSummary } from '@kvfold/jobs';
import type { ResultLine } from '@kvfold/contract';
import { ObjectNotFoundError } from '@kvfold/storage';
import type { ObjectStore } from '@kvfold/storage';

/** Codes of the stub lines written for documents without a usable result. */
export const FinalizeStubCode = {
  /** The document's job failed before it wrote a result (reason from BullMQ when given). */
  Missing: 'KVF_RESULT_MISSING',
  /** The result object is not a valid DocumentResult. */
  Invalid: 'KVF_RESULT_INVALID',
  /** The document was cancelled before it finished. */
  Cancelled: 'KVF_BATCH_CANCELLED',
} as const;

/** Input of {@link finalizeBatch}. */
export interface FinalizeBatchInput {
  readonly store: ObjectStore;
  readonly batchId: string;
  /** Every document of the batch (duplicates are ignored). */
  readonly documentIds: readonly string[];
  /** Why documents without a result failed, by docId (e.g. from the parent's ignored failures). */
  readonly failures?: Readonly<Record<string, string>>;
  /** Documents removed or stopped by cancellation; a missing result for them is `cancelled`. */
  readonly cancelled?: ReadonlySet<string> | readonly string[];
}

/** What finalizeBatch wrote. */
export interface FinalizeBatchResult {
  readonly key: string;
  /** Lines written (= distinct documents). */
  readonly documents: number;
  readonly completed: number;
  /** Failed documents, with a result or a stub. */
  readonly failed: number;
  readonly cancelled: number;
  /** Documents that had no result object (stubs written). */
  readonly missing: number;
  /** The documents whose line is a stub (no result, or an unreadable one), with the status it gives them. */
  readonly stubs: readonly { readonly docId: string; readonly status: 'failed' | 'cancelled' }[];
  readonly bytes: number;
  /** Tokens of the documents with a result. */
  readonly tokens: number;
}

/**
 * Writes results.jsonl for `batchId` and returns its counts. Rerunning it rewrites the same file
 * from the same objects, so a second delivery of the parent job is harmless.
 */
export async function finalizeBatch(input: FinalizeBatchInput): Promise<FinalizeBatchResult> {
  const { store, batchId } = input;
  const ids = [...new Set(input.documentIds)].sort();
  const cancelled = new Set(input.cancelled ?? []);
  const counts = { completed: 0, failed: 0, cancelled: 0, missing: 0, bytes: 0, tokens: 0 };
  const stubs: { docId: string; status: 'failed' | 'cancelled' }[] = [];

  async function* lines(): AsyncGenerator<Uint8Array> {
    for (const docId of ids) {
      const line = await resultLine(store, batchId, docId, input.failures?.[docId], cancelled.has(docId), counts);
      const bytes = Buffer.from(`${JSON.stringify(line)}\n`, 'utf8');
      counts.bytes += bytes.byteLength;
      if ('tokens' in line) counts.tokens += line.tokens;
      else stubs.push({ docId, status: line.status as 'failed' | 'cancelled' });
      if (line.status === 'completed') counts.completed += 1;
      else if (line.status === 'failed') counts.failed += 1;
      else counts.cancelled += 1;
      yield bytes;
    }
  }

  const key = batchResultsKey(batchId);
  await store.put(key, lines(), { contentType: 'application/x-ndjson' });
  const { completed, failed, cancelled: cancelledCount, tokens } = counts;
  await writeBatchSummary(store, batchId, { documents: ids.length, completed, failed, cancelled: cancelledCount, tokens });
  return { key, documents: ids.length, ...counts, stubs };
}

async function resultLine(
  store: ObjectStore,
  batchId: string,
  docId: string,
  failure: string | undefined,
  wasCancelled: boolean,
  counts: { missing: number },
): Promise<ResultLine> {
  let text: string;
  try {
    text = Buffer.from(await store.getBytes(documentResultKey(batchId, docId))).toString('utf8');
  } catch (err) {
    if (!(err instanceof ObjectNotFoundError)) throw err;
    counts.missing += 1;
    if (wasCancelled) return stub(batchId, docId, 'cancelled', FinalizeStubCode.Cancelled, `document ${docId} was cancelled before it finished`);
    const why = failure ?? 'its job ended without writing a result';
    return stub(batchId, docId, 'failed', FinalizeStubCode.Missing, `document ${docId} has no result: ${why}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return stub(batchId, docId, 'failed', FinalizeStubCode.Invalid, `result of ${docId} is not JSON: ${(err as Error).message}`);
  }
  const parsed = DocumentResult.safeParse(value);
  if (!parsed.success) {
    return stub(batchId, docId, 'failed', FinalizeStubCode.Invalid, `result of ${docId} is not a DocumentResult: ${formatZodError(parsed.error)}`);
  }
  return parsed.data;
}

function stub(batchId: string, docId: string, status: 'failed' | 'cancelled', code: string, message: string): ResultLine {
  return ResultStub.parse({ batchId, docId, status, error: { code, message } });
}
