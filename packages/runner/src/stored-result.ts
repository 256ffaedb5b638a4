/**
 * "Already done?": what the store says of a document of a batch, read the same way by `kvfold run`
 * and the queue worker. A document is done when its stored result is a readable `completed` one;
 * a `failed` result, or one that cannot be read as a result, means it is folded again (unless a
 * rerun keeps failures).
 */
import { DocumentResult, documentResultKey } from '@kvfold/contract';
import { type ObjectStore, readOptional } from '@kvfold/storage';

export type StoredResult = { readonly status: 'completed'; readonly result: DocumentResult } | { readonly status: 'failed' } | null;

export async function storedResult(store: ObjectStore, batchId: string, docId: string): Promise<StoredResult> {
  const bytes = await readOptional(store, documentResultKey(batchId, docId));
  if (!bytes) return null;
  let parsed: ReturnType<typeof DocumentResult.safeParse>;
  try {
    parsed = DocumentResult.safeParse(JSON.parse(Buffer.from(bytes).toString('utf8')));
  } catch {
    return { status: 'failed' };
  }
  return parsed.success && parsed.data.status === 'completed' ? { status: 'completed', result: parsed.data } : { status: 'failed' };
}

/** Whether a document with this stored result is folded (again). */
export function needsFold(stored: StoredResult, options: { keepFailures?: boolean } = {}): boolean {
  return stored === null || (stored.status === 'failed' && options.keepFailures !== true);
}
