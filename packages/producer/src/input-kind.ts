/**
 * Which reader an input needs, by what it is on disk and its name.
 */
import type { Stats } from 'node:fs';

/** The kinds of input the producer reads. */
export type InputKind = 'directory' | 'tar' | 'zip' | 'jsonl' | 'file';

/** Classifies an input path from its stats and file name. */
export function inputKind(path: string, stats: Stats): InputKind {
  if (stats.isDirectory()) return 'directory';
  const lower = path.toLowerCase();
  if (lower.endsWith('.tar') || lower.endsWith('.tar.gz') || lower.endsWith('.tgz')) return 'tar';
  if (lower.endsWith('.zip')) return 'zip';
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl';
  return 'file';
}
