/**
 * Where a batch's artefacts live in the object store. The API reads these keys, the worker and
 * finalizeBatch write them; nothing else builds these paths by hand.
 *
 *     batch-records/<batchId>.json                the BatchRecord: spec, corpora (the document list), counts,
 *                                                 creation time (written by the API before it enqueues)
 *     batches/<batchId>/spec.json                 the parsed BatchSpec (written by the API)
 *     batches/<batchId>/cancelled.json            present while the batch is cancelled (written by cancel,
 *                                                 removed by retry)
 *     batches/<batchId>/ingest-report.json        every file skipped or refused by an upload's ingest (the API)
 *     batches/<batchId>/results/<docId>.json      one DocumentResult (written by the worker)
 *     batches/<batchId>/results.jsonl             every result, one per line (written at finalization)
 *     batches/<batchId>/summary.json              the counts of results.jsonl (written right after it), so
 *                                                 an ended batch is rebuilt without reading its results
 */

/** Folder of every batch's record: one small object per batch, so listing batches never walks their results. */
export const BATCH_RECORDS_PREFIX = 'batch-records/';

/** The batch's BatchRecord, as JSON. */
export function batchRecordKey(batchId: string): string {
  return `${BATCH_RECORDS_PREFIX}${batchId}.json`;
}

/** The batch id of a record key, or null when `key` is not one. */
export function batchIdOfRecordKey(key: string): string | null {
  const match = /^batch-records\/(b[0-9a-f]{32})\.json$/.exec(key);
  return match ? (match[1] as string) : null;
}

/** The marker of a cancelled batch (its content: when cancel was asked). */
export function batchCancelKey(batchId: string): string {
  return `${batchPrefix(batchId)}cancelled.json`;
}

/** Folder of everything stored for one batch. */
export function batchPrefix(batchId: string): string {
  return `batches/${batchId}/`;
}

/** The batch's parsed spec, as JSON. */
export function batchSpecKey(batchId: string): string {
  return `${batchPrefix(batchId)}spec.json`;
}

/** The ingest report of the batch's upload, every skipped and refused entry listed, as JSON. */
export function batchIngestReportKey(batchId: string): string {
  return `${batchPrefix(batchId)}ingest-report.json`;
}

/** Folder of the per-document results of a batch (list it to find the results written so far). */
export function documentResultsPrefix(batchId: string): string {
  return `${batchPrefix(batchId)}results/`;
}

/** One document's DocumentResult JSON. */
export function documentResultKey(batchId: string, docId: string): string {
  return `${documentResultsPrefix(batchId)}${docId}.json`;
}

/** The batch's results as JSONL, written once when the batch is finalized. */
export function batchResultsKey(batchId: string): string {
  return `${batchPrefix(batchId)}results.jsonl`;
}

/** The counts of a finalized batch (BatchSummary). */
export function batchSummaryKey(batchId: string): string {
  return `${batchPrefix(batchId)}summary.json`;
}

/** The docId of a per-document result key, or null when `key` is not one. */
export function docIdOfResultKey(batchId: string, key: string): string | null {
  const prefix = documentResultsPrefix(batchId);
  if (!key.startsWith(prefix) || !key.endsWith('.json')) return null;
  const docId = key.slice(prefix.length, -'.json'.length);
  return /^[0-9a-f]{64}$/.test(docId) ? docId : null;
}
