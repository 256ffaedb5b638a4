/**
 * Caps that keep hostile or oversized inputs from exhausting memory, disk or time.
 */

/** Limits applied while ingesting. Each archive is measured on its own. */
export interface IngestLimits {
  /** Entries (of any type) read from one archive before the rest is refused. */
  readonly maxEntries: number;
  /** Uncompressed bytes read from one archive before the rest is refused. */
  readonly maxTotalBytes: number;
  /** Bytes of one file or entry; larger ones are refused (archives) or skipped (files). */
  readonly maxEntryBytes: number;
  /** UTF-8 bytes of one document (a group under `directory`); larger ones are refused unbuilt. */
  readonly maxDocumentBytes: number;
  /** Uncompressed/compressed ratio of one zip entry. */
  readonly maxEntryRatio: number;
  /** Uncompressed bytes / archive file size, for a whole archive. */
  readonly maxTotalRatio: number;
  /** Ratios are only judged past this many uncompressed bytes: tiny files compress absurdly well. */
  readonly ratioGraceBytes: number;
}

const MiB = 1024 * 1024;

/**
 * Defaults: generous for real codebases and log archives (a Linux kernel tarball has ~90K entries,
 * ~1.4 GiB, and compresses ~6x), far below what a bomb needs (42.zip expands ~10^11-fold).
 */
export const DEFAULT_INGEST_LIMITS: IngestLimits = {
  maxEntries: 200_000,
  maxTotalBytes: 4 * 1024 * MiB,
  // 64 MiB of text is ~16M tokens, two orders of magnitude past any fold we target.
  maxEntryBytes: 64 * MiB,
  // The same bound for a group: past it a document is far over any token limit and only costs memory.
  maxDocumentBytes: 64 * MiB,
  // Deflate tops out near 1032:1; source and logs compress 3-20x, very repetitive logs ~100x.
  maxEntryRatio: 200,
  maxTotalRatio: 200,
  ratioGraceBytes: 1 * MiB,
};

/** Fills unspecified limits with the defaults. */
export function resolveLimits(partial: Partial<IngestLimits> = {}): IngestLimits {
  return { ...DEFAULT_INGEST_LIMITS, ...partial };
}

/** Whether `expanded` bytes from `compressed` bytes break `maxRatio` (only past the grace size). */
export function exceedsRatio(expanded: number, compressed: number, maxRatio: number, graceBytes: number): boolean {
  if (expanded <= graceBytes) return false;
  return expanded / Math.max(1, compressed) > maxRatio;
}
