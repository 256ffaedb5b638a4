/**
 * The ingest report: what was taken, what was skipped (harmless: binary, empty, ignored) and what
 * was refused (hostile or over a cap), each with the input and the entry it concerns.
 */
import type { ProducerErrorCode } from './errors.ts';

/** A file left out for an ordinary reason. */
export interface SkippedEntry {
  readonly input: string;
  readonly path: string;
  readonly reason: string;
}

/** An entry refused for safety or a cap; `code` is from the producer's catalogue. */
export interface RefusedEntry {
  readonly input: string;
  readonly entry: string;
  readonly reason: string;
  readonly code: ProducerErrorCode;
}

/** Counts and lists of one ingest run. Complete once the documents have been iterated. */
export interface IngestReport {
  readonly inputs: string[];
  /** Files (or jsonl lines) decoded into text. */
  files: number;
  /** Documents produced (after grouping). */
  documents: number;
  /** UTF-8 bytes of all documents. */
  bytes: number;
  /** Files left out by .gitignore rules or because they sit in `.git/`. */
  ignored: number;
  readonly skipped: SkippedEntry[];
  readonly refused: RefusedEntry[];
}

/** An empty report for `inputs`. */
export function newReport(inputs: readonly string[]): IngestReport {
  return { inputs: [...inputs], files: 0, documents: 0, bytes: 0, ignored: 0, skipped: [], refused: [] };
}

/** Entries left out for one reason: how many, and the first few names. */
export interface ReasonSummary {
  readonly kind: 'skipped' | 'refused';
  /** The producer's code (refusals only). */
  readonly code?: string;
  /** The first entry's reason, as an example of the group. */
  readonly reason: string;
  readonly count: number;
  /** The first {@link SUMMARY_EXAMPLES} entries, as `input: entry`. */
  readonly first: readonly string[];
}

/** Names shown per reason: enough to recognise the pattern, few enough for a terminal line. */
export const SUMMARY_EXAMPLES = 3;

/** A skip reason with its numbers taken out, so `N bytes exceeds ...` groups as one. */
const reasonKey = (reason: string) => reason.replace(/\d+/g, 'N');

/**
 * The report folded into one entry per reason (skips by reason, refusals by code), in the order
 * each reason first occurred.
 */
export function summarizeReport(report: Pick<IngestReport, 'skipped' | 'refused'>): ReasonSummary[] {
  const groups = new Map<string, { kind: 'skipped' | 'refused'; code?: string; reason: string; count: number; first: string[] }>();
  const add = (key: string, kind: 'skipped' | 'refused', code: string | undefined, reason: string, name: string) => {
    const group = groups.get(key) ?? { kind, ...(code ? { code } : {}), reason, count: 0, first: [] };
    group.count += 1;
    if (group.first.length < SUMMARY_EXAMPLES) group.first.push(name);
    groups.set(key, group);
  };
  for (const s of report.skipped) add(`skipped\t${reasonKey(s.reason)}`, 'skipped', undefined, s.reason, `${s.input}: ${s.path}`);
  for (const r of report.refused) add(`refused\t${r.code}`, 'refused', r.code, r.reason, `${r.input}: ${r.entry}`);
  return [...groups.values()];
}

/** The first {@link SUMMARY_EXAMPLES} entries of each reason, grouped as {@link summarizeReport} does. */
export function reportExamples(report: Pick<IngestReport, 'skipped' | 'refused'>): { skipped: SkippedEntry[]; refused: RefusedEntry[] } {
  const seen = new Map<string, number>();
  const keep = (key: string) => {
    const n = seen.get(key) ?? 0;
    seen.set(key, n + 1);
    return n < SUMMARY_EXAMPLES;
  };
  return {
    skipped: report.skipped.filter((s) => keep(`skipped\t${reasonKey(s.reason)}`)),
    refused: report.refused.filter((r) => keep(`refused\t${r.code}`)),
  };
}

/** One line of a summary, e.g. `refused 3576 entries [KVF_INGEST_LINK_ENTRY] (hardlink to ...): a, b, c and 3573 more`. */
export function summaryLine(s: ReasonSummary): string {
  const more = s.count > s.first.length ? ` and ${s.count - s.first.length} more` : '';
  const what = s.count === 1 ? 'entry' : 'entries';
  return `${s.kind} ${s.count} ${what}${s.code ? ` [${s.code}]` : ''} (${s.reason}): ${s.first.join(', ')}${more}`;
}
