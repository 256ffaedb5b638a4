/**
 * Turns NIAH trials into what people read: exact match by length x depth per chunk size (a
 * markdown table and a heatmap each), streaming's split by whether the needle was still in the
 * window, and the run's scale (trials, chain depths, timings, memory).
 */
import type { NiahGrid } from './grid.ts';
import { heatmapSvg } from './heatmap.ts';
import type { NiahTrial } from './run-niah.ts';
import { tokensLabel } from './svg.ts';

export interface CellStats {
  readonly trials: number;
  readonly exact: number;
}

/** Exact-match counts grouped by a key. */
export function tally<K>(trials: readonly NiahTrial[], key: (t: NiahTrial) => K): Map<K, CellStats> {
  const out = new Map<K, CellStats>();
  for (const t of trials) {
    const k = key(t);
    const s = out.get(k) ?? { trials: 0, exact: 0 };
    out.set(k, { trials: s.trials + 1, exact: s.exact + (t.exact ? 1 : 0) });
  }
  return out;
}

const pct = (s: CellStats | undefined) => (s ? `${((100 * s.exact) / s.trials).toFixed(0)}% (${s.exact}/${s.trials})` : '—');
const cellKey = (length: number, depth: number) => `${length}|${depth}`;

/** The axes actually present in the trials, in order. */
function axes(trials: readonly NiahTrial[]) {
  const sorted = (xs: Iterable<number>) => [...new Set(xs)].sort((a, b) => a - b);
  return { lengths: sorted(trials.map((t) => t.length)), depths: sorted(trials.map((t) => t.depth)), chunkSizes: sorted(trials.map((t) => t.chunkSize)) };
}

/** One line naming the policy and KV storage of a run, e.g. `streaming (sink 4, window 2048), f32 KV`. */
export function describePolicy(grid: Pick<NiahGrid, 'policy' | 'kv'>): string {
  const p = grid.policy;
  return `${p.kind === 'streaming' ? `streaming (sink ${p.sink}, window ${p.window})` : 'full'}, ${grid.kv} KV`;
}

/** Markdown table of exact match by length (rows) and depth (columns) for one chunk size. */
export function matchTable(trials: readonly NiahTrial[], chunkSize: number): string {
  const { lengths, depths } = axes(trials);
  const mine = trials.filter((t) => t.chunkSize === chunkSize);
  const cells = tally(mine, (t) => cellKey(t.length, t.depth));
  const byLength = tally(mine, (t) => t.length);
  const maxChain = new Map<number, number>();
  for (const t of mine) maxChain.set(t.length, Math.max(maxChain.get(t.length) ?? 0, t.chainDepth));
  const lines = [
    `| length | ${depths.map((d) => `depth ${d}`).join(' | ')} | all depths | max chain depth |`,
    `|---|${depths.map(() => '---').join('|')}|---|---|`,
  ];
  for (const length of lengths) {
    if (!byLength.has(length)) continue;
    lines.push(`| ${tokensLabel(length)} | ${depths.map((d) => pct(cells.get(cellKey(length, d)))).join(' | ')} | ${pct(byLength.get(length))} | ${maxChain.get(length)} |`);
  }
  return lines.join('\n');
}

/** Streaming: exact match of needles still inside the window vs. already evicted. */
export function windowTable(trials: readonly NiahTrial[]): string {
  const s = tally(trials, (t) => `${t.chunkSize}|${t.inWindow ? 'in' : 'out'}`);
  const { chunkSizes } = axes(trials);
  const lines = ['| chunk size | needle inside the window | needle evicted |', '|---|---|---|'];
  for (const c of chunkSizes) lines.push(`| ${c} | ${pct(s.get(`${c}|in`))} | ${pct(s.get(`${c}|out`))} |`);
  return lines.join('\n');
}

/** Chain-depth bucket of a trial: 0, 1, 2–3, 4–7, ... (powers of two). */
export function chainBucket(depth: number): [number, number] {
  if (depth === 0) return [0, 0];
  const lo = 2 ** Math.floor(Math.log2(depth));
  return [lo, 2 * lo - 1];
}

/** Exact match by chain depth (power-of-two buckets) per chunk size: how far back a needle can be. */
export function chainTable(trials: readonly NiahTrial[]): string {
  const { chunkSizes } = axes(trials);
  const label = (d: number) => {
    const [lo, hi] = chainBucket(d);
    return lo === hi ? String(lo) : `${lo}–${hi}`;
  };
  const buckets = [...new Set(trials.map((t) => chainBucket(t.chainDepth)[0]))].sort((a, b) => a - b);
  const s = tally(trials, (t) => `${t.chunkSize}|${chainBucket(t.chainDepth)[0]}`);
  const lines = [`| chain depth | ${chunkSizes.map((c) => `chunk ${c}`).join(' | ')} |`, `|---|${chunkSizes.map(() => '---').join('|')}|`];
  for (const b of buckets) lines.push(`| ${label(b)} | ${chunkSizes.map((c) => pct(s.get(`${c}|${b}`))).join(' | ')} |`);
  return lines.join('\n');
}

export interface NiahReportInput {
  readonly grid: NiahGrid;
  readonly trials: readonly NiahTrial[];
  readonly modelDir: string;
  readonly modelFingerprint?: string;
  readonly protocol: string;
  /** The command line that produced the run. */
  readonly command?: string;
}

export function reportMarkdown(input: NiahReportInput): string {
  const { grid, trials } = input;
  const total = tally(trials, () => 'all').get('all') ?? { trials: 0, exact: 0 };
  const { chunkSizes } = axes(trials);
  const foldOf = (t: NiahTrial) => `${t.seed ?? 0}|${t.length}|${t.haystack}|${t.chunkSize}`;
  const folds = new Set(trials.map(foldOf)).size;
  const foldMs = new Map<string, number>();
  for (const t of trials) foldMs.set(foldOf(t), t.timings.foldMs);
  const foldSeconds = [...foldMs.values()].reduce((a, b) => a + b, 0) / 1000;
  const seeds = [...new Set(trials.map((t) => t.seed ?? grid.seed))].sort((a, b) => a - b);
  const askSeconds = trials.reduce((a, t) => a + t.timings.askMs, 0) / 1000;
  const out = [
    '# Needle in a haystack',
    '',
    `- model: \`${input.modelDir}\`${input.modelFingerprint ? ` (${input.modelFingerprint})` : ''}`,
    `- protocol: ${input.protocol}; KV policy: ${describePolicy(grid)}`,
    `- needles per haystack: ${grid.needlesPerHaystack}${grid.needlesPerHaystack > 1 ? ' (every needle asked from the same folded state)' : ' (the paper’s protocol)'}; trials per cell: up to ${grid.trials}; seed${seeds.length > 1 ? 's' : ''} ${seeds.join(', ')}`,
    `- exact match: **${pct(total)}** over ${total.trials} trials, ${folds} fold${folds === 1 ? '' : 's'}; max chain depth ${Math.max(0, ...trials.map((t) => t.chainDepth))}`,
    `- time: folds ${foldSeconds.toFixed(0)} s, questions ${askSeconds.toFixed(0)} s; peak RSS ${Math.max(0, ...trials.map((t) => t.peakRssMiB)).toFixed(0)} MiB`,
    ...(input.command ? [`- command: \`${input.command}\``] : []),
    '',
    'A trial’s length is the context it fills (document, question and answer). Chain depth: fold steps',
    'between the needle’s chunk and the question.',
  ];
  for (const c of chunkSizes) {
    out.push('', `## Chunk size ${c}`, '', matchTable(trials, c), '', `![exact match, chunk ${c}](${heatmapName(c)})`);
  }
  out.push('', '## By chain depth', '', 'Fold steps between the needle’s chunk and the question, in power-of-two buckets.', '', chainTable(trials));
  if (grid.policy.kind === 'streaming') {
    out.push('', '## Inside vs. outside the window', '', 'A needle is inside when all its rows are still cached (sink or recent window) at question time.', '', windowTable(trials));
  }
  return `${out.join('\n')}\n`;
}

export const heatmapName = (chunkSize: number) => `heatmap-chunk${chunkSize}.svg`;

/** One heatmap per chunk size, by file name. */
export function heatmaps(input: NiahReportInput): Map<string, string> {
  const { lengths, depths, chunkSizes } = axes(input.trials);
  const out = new Map<string, string>();
  for (const c of chunkSizes) {
    const cells = tally(
      input.trials.filter((t) => t.chunkSize === c),
      (t) => cellKey(t.length, t.depth),
    );
    out.set(
      heatmapName(c),
      heatmapSvg({
        title: `Needle in a haystack: exact match, chunk size ${c}`,
        subtitle: `${input.protocol} protocol; ${describePolicy(input.grid)}; ${input.grid.needlesPerHaystack} needle(s) per haystack`,
        lengths,
        depths,
        cell: (l, d) => cells.get(cellKey(l, d)),
      }),
    );
  }
  return out;
}

/** The summary table printed on a terminal: one line per (chunk size, length). */
export function summaryText(trials: readonly NiahTrial[]): string {
  const { lengths, depths, chunkSizes } = axes(trials);
  const cells = tally(trials, (t) => `${t.chunkSize}|${cellKey(t.length, t.depth)}`);
  const w = 12;
  const lines = [['chunk', 'length', ...depths.map((d) => `d=${d}`)].map((s) => s.padStart(w)).join('')];
  for (const c of chunkSizes)
    for (const l of lengths) {
      const row = depths.map((d) => {
        const s = cells.get(`${c}|${cellKey(l, d)}`);
        return s ? `${((100 * s.exact) / s.trials).toFixed(0)}% ${s.exact}/${s.trials}` : '-';
      });
      lines.push([String(c), tokensLabel(l), ...row].map((s) => s.padStart(w)).join(''));
    }
  const total = tally(trials, () => 0).get(0) ?? { trials: 0, exact: 0 };
  lines.push(`exact match ${pct(total)}`);
  return `${lines.join('\n')}\n`;
}
