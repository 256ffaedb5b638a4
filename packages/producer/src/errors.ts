/**
 * Error catalogue of @kvfold/producer. Refusals of hostile or oversized archive entries are
 * reported (not thrown) with these codes; the same codes are thrown when a whole operation fails.
 *
 * | code                            | meaning                                                        |
 * |---------------------------------|----------------------------------------------------------------|
 * | KVF_INGEST_INPUT_NOT_FOUND      | an input path does not exist                                   |
 * | KVF_INGEST_INPUT_UNREADABLE     | an input (or a file inside a directory) cannot be read         |
 * | KVF_INGEST_ESCAPING_ENTRY       | archive entry with `..`, an absolute path or a drive letter    |
 * | KVF_INGEST_LINK_ENTRY           | archive symlink, or hardlink not to an earlier file of the root|
 * | KVF_INGEST_SPECIAL_ENTRY        | archive entry that is a device, FIFO or other non-file         |
 * | KVF_INGEST_TOO_MANY_ENTRIES     | archive has more entries than `maxEntries`; the rest is unread |
 * | KVF_INGEST_ENTRY_TOO_LARGE      | one entry is larger than `maxEntryBytes`                       |
 * | KVF_INGEST_ARCHIVE_TOO_LARGE    | an archive expands past `maxTotalBytes`; the rest is unread    |
 * | KVF_INGEST_COMPRESSION_RATIO    | an entry or archive expands more than the ratio caps allow     |
 * | KVF_INGEST_UNSUPPORTED_ENTRY    | encrypted or unsupported compression method                    |
 * | KVF_INGEST_CORRUPT_ARCHIVE      | the archive cannot be parsed (past this point)                 |
 * | KVF_INGEST_JSONL_BAD_LINE       | a .jsonl line is not `{"id"?, "path"?, "text"}`                |
 * | KVF_INGEST_DOCUMENT_TOO_LONG    | a document has more tokens than the batch allows (proven)      |
 * | KVF_INGEST_DOCUMENT_TOO_LARGE   | a document is larger than `maxDocumentBytes`                   |
 * | KVF_CORPUS_NO_DOCUMENTS         | nothing was left to upload after ingest                        |
 * | KVF_CORPUS_DIGEST_MISMATCH      | bytes read back do not hash to the document id                 |
 * | KVF_CORPUS_NOT_UTF8             | a stored document's bytes are not UTF-8 (the store holds UTF-8) |
 * | KVF_CORPUS_INDEX_INVALID        | a corpus index does not match its schema                       |
 * | KVF_ENQUEUE_EMPTY               | a batch has no documents to enqueue                            |
 * | KVF_ENQUEUE_MODEL               | a batch's model is not there or is not a model folder          |
 * | KVF_BATCH_UNKNOWN               | retry/recover: the store has no record of that batch           |
 * | KVF_BATCH_NOT_ENDED             | retry: the batch is still running (retry once it has ended)    |
 */

/** Stable codes of the producer. */
export const ProducerErrorCode = {
  InputNotFound: 'KVF_INGEST_INPUT_NOT_FOUND',
  InputUnreadable: 'KVF_INGEST_INPUT_UNREADABLE',
  EscapingEntry: 'KVF_INGEST_ESCAPING_ENTRY',
  LinkEntry: 'KVF_INGEST_LINK_ENTRY',
  SpecialEntry: 'KVF_INGEST_SPECIAL_ENTRY',
  TooManyEntries: 'KVF_INGEST_TOO_MANY_ENTRIES',
  EntryTooLarge: 'KVF_INGEST_ENTRY_TOO_LARGE',
  ArchiveTooLarge: 'KVF_INGEST_ARCHIVE_TOO_LARGE',
  CompressionRatio: 'KVF_INGEST_COMPRESSION_RATIO',
  UnsupportedEntry: 'KVF_INGEST_UNSUPPORTED_ENTRY',
  CorruptArchive: 'KVF_INGEST_CORRUPT_ARCHIVE',
  JsonlBadLine: 'KVF_INGEST_JSONL_BAD_LINE',
  DocumentTooLong: 'KVF_INGEST_DOCUMENT_TOO_LONG',
  DocumentTooLarge: 'KVF_INGEST_DOCUMENT_TOO_LARGE',
  NoDocuments: 'KVF_CORPUS_NO_DOCUMENTS',
  DigestMismatch: 'KVF_CORPUS_DIGEST_MISMATCH',
  NotUtf8: 'KVF_CORPUS_NOT_UTF8',
  IndexInvalid: 'KVF_CORPUS_INDEX_INVALID',
  EnqueueEmpty: 'KVF_ENQUEUE_EMPTY',
  EnqueueModel: 'KVF_ENQUEUE_MODEL',
  BatchUnknown: 'KVF_BATCH_UNKNOWN',
  BatchNotEnded: 'KVF_BATCH_NOT_ENDED',
} as const;

export type ProducerErrorCode = (typeof ProducerErrorCode)[keyof typeof ProducerErrorCode];

/** An error a caller can branch on by `code`. */
export class ProducerError extends Error {
  override readonly name = 'ProducerError';
  constructor(
    readonly code: ProducerErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
