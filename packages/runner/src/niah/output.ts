/**
 * The files of a NIAH run: results.jsonl (appended trial by trial, so an interrupted run keeps what
 * it measured), then report.md and one heatmap SVG per chunk size.
 */
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { heatmaps, type NiahReportInput, reportMarkdown } from './report.ts';
import type { NiahTrial } from './run-niah.ts';

export const RESULTS_FILE = 'results.jsonl';
export const REPORT_FILE = 'report.md';

/** Appends trials to `<dir>/results.jsonl` (created empty). */
export async function openResults(dir: string): Promise<{ path: string; append(trial: NiahTrial): Promise<void> }> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const path = join(root, RESULTS_FILE);
  await writeFile(path, '');
  return { path, append: (t) => appendFile(path, `${JSON.stringify(t)}\n`) };
}

/** Writes report.md and the heatmaps; returns the paths written. */
export async function writeReport(dir: string, input: NiahReportInput): Promise<string[]> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const written = [join(root, REPORT_FILE)];
  await writeFile(written[0] as string, reportMarkdown(input));
  for (const [name, svg] of heatmaps(input)) {
    const path = join(root, name);
    await writeFile(path, svg);
    written.push(path);
  }
  return written;
}
