/**
 * The files of a NIAH run: results.jsonl (appended trial by trial, so an interrupted run keeps what
 * it measured), then report.md and one heatmap SVG per chunk size.
 */
import { appendFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { NiahError } from './errors.ts';
import type { NiahGrid } from './grid.ts';
import { heatmaps, type NiahReportInput, reportMarkdown, tally } from './report.ts';
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

/** Reads trials back from results.jsonl files, naming the file and line of anything unreadable. */
export async function readResults(paths: readonly string[]): Promise<NiahTrial[]> {
  const trials: NiahTrial[] = [];
  for (const path of paths) {
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new NiahError('KVF_NIAH_BAD_GRID', `cannot read ${path}: ${err.code ?? err.message}; pass the results.jsonl of a kvfold niah run`);
    });
    text.split('\n').forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        trials.push(JSON.parse(line) as NiahTrial);
      } catch {
        throw new NiahError('KVF_NIAH_BAD_GRID', `${path}:${i + 1} is not a JSON trial`);
      }
    });
  }
  return trials;
}

/** The grid a set of trials was run with, as far as the report needs it; refuses mixed runs. */
export function gridOfTrials(trials: readonly NiahTrial[]): NiahGrid {
  const first = trials[0];
  if (!first) throw new NiahError('KVF_NIAH_BAD_GRID', 'no trials to report');
  const policyOf = (t: NiahTrial) => `${t.policy}|${t.sink ?? ''}|${t.window ?? ''}|${t.kv}|${t.protocol}`;
  const mixed = trials.find((t) => policyOf(t) !== policyOf(first));
  if (mixed) throw new NiahError('KVF_NIAH_BAD_GRID', `the results mix runs (${policyOf(first)} and ${policyOf(mixed)}); report each configuration on its own`);
  const sorted = (xs: readonly number[]) => [...new Set(xs)].sort((a, b) => a - b);
  const cells = tally(trials, (t) => `${t.length}|${t.depth}|${t.chunkSize}`);
  return {
    lengths: sorted(trials.map((t) => t.length)),
    depths: sorted(trials.map((t) => t.depth)),
    chunkSizes: sorted(trials.map((t) => t.chunkSize)),
    policy: first.policy === 'streaming' ? { kind: 'streaming', sink: first.sink ?? 0, window: first.window ?? 0 } : { kind: 'full' },
    kv: first.kv as NiahGrid['kv'],
    trials: Math.max(...[...cells.values()].map((c) => c.trials)),
    seed: first.seed ?? 0,
    needlesPerHaystack: Math.max(...trials.map((t) => t.needlesPerHaystack)),
    protocol: first.protocol,
  };
}
