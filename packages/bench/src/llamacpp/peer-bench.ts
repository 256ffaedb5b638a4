/**
 * Our engine beside its CPU peer, llama.cpp, on the same weights and the same token ids: one
 * random Llama-shaped BF16 checkpoint, imported by `models import` at f32, int8 and int4 and
 * written as GGUF at F32, Q8_0 and Q4_0. At f32 both first continue a short prompt greedily (the
 * tokens should agree). Then, for each width, each engine in a fresh process (the caller spawns
 * it) prefills an N-token document (ours in chunks, llama.cpp with that batch size) and decodes M
 * tokens after it, with the same threads and cache width; runs are interleaved, medians reported,
 * and the issues' bars decided on them.
 */
import { existsSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ImportDtype, importCheckpoint, writeCheckpoint } from '@kvfold/model-zoo';
import type { Bar } from '../engine/engine-bench.ts';
import type { PrecisionRun, PrecisionRunOptions } from '../precision/measure-precision.ts';
import { PRECISION_SHAPES, parameterCount, randomCheckpointContents } from '../precision/shapes.ts';
import type { GgmlType } from './ggml-blocks.ts';
import { writeLlamaGguf } from './gguf-writer.ts';
import type { GreedyOptions, GreedyRun, LlamaCppRun, LlamaCppRunOptions, LlamaCppSession, PeerKv } from './llamacpp-run.ts';
import type { OursGreedyOptions } from './ours-greedy.ts';

/** Our import width and the GGUF type that matches it (both 32 weights a scale where quantized). */
export const PEER_WIDTHS = { f32: 'F32', int8: 'Q8_0', int4: 'Q4_0' } as const satisfies Record<string, GgmlType>;
export type PeerWidth = keyof typeof PEER_WIDTHS;
export const PEER_SHAPES = ['123m', '1b'] as const;
export type PeerShape = (typeof PEER_SHAPES)[number];

/** What every measured run of both engines shares (echoed in the report). */
export interface PeerSettings {
  readonly shape: PeerShape;
  /** Tokens prefilled, in chunks of chunkSize (llama.cpp's batch size), then decoded. */
  readonly tokens: number;
  readonly chunkSize: number;
  readonly decode: number;
  readonly repeats: number;
  readonly threads: number;
  readonly kv: PeerKv;
  readonly flashAttention: 'auto' | boolean;
}

/** Each measurement in a process of its own: the caller spawns them. */
export interface PeerChildren {
  readonly oursRun: (o: PrecisionRunOptions) => Promise<PrecisionRun>;
  readonly peerRun: (o: LlamaCppRunOptions) => Promise<LlamaCppRun>;
  readonly oursGreedy: (o: OursGreedyOptions) => Promise<GreedyRun>;
  readonly peerGreedy: (o: LlamaCppSession & GreedyOptions) => Promise<GreedyRun>;
}

export interface PeerBenchOptions extends PeerSettings {
  readonly widths: readonly PeerWidth[];
  /** Prompt tokens and greedy tokens of the agreement check at f32. */
  readonly validateTokens: number;
  readonly validateGenerate: number;
  /** Where the checkpoint, the folders and the GGUF files are written; complete ones there are reused. */
  readonly dir: string;
  /** Where node-llama-cpp is installed. */
  readonly peerDir: string;
  readonly children: PeerChildren;
  readonly log: (line: string) => void;
}

export interface Agreement {
  readonly tokens: number;
  readonly generate: number;
  /** Share of the greedy positions where both picked the same token. */
  readonly agreement: number;
  /** First position where they differ (null: none). */
  readonly firstDifference: number | null;
  /** Largest |our logit - llama.cpp's| at the last prompt position, over the vocabulary. */
  readonly maxAbsLogit: number;
  readonly ours: readonly number[];
  readonly llamaCpp: readonly number[];
}

export interface Medians {
  readonly prefillTokensPerSecond: number;
  readonly decodeTokensPerSecond: number;
  readonly peakRssMiB: number;
}

export interface PeerRow {
  readonly width: PeerWidth;
  readonly ggmlType: GgmlType;
  readonly folderBytes: number;
  readonly ggufBytes: number;
  readonly ours: Medians & { readonly runs: PrecisionRun[] };
  readonly llamaCpp: Medians & { readonly runs: LlamaCppRun[] };
  /** ours / llama.cpp, on the medians. */
  readonly ratios: Medians;
}

export interface PeerReport extends PeerSettings {
  readonly parameters: number;
  readonly agreement: Agreement | null;
  readonly rows: PeerRow[];
  readonly bars: Bar[];
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;

/** Makes `path` with `make` unless a marker says an earlier run finished it (one cut off midway is made again). */
async function once(path: string, make: () => Promise<void>): Promise<void> {
  const marker = `${path}.complete`;
  if (existsSync(marker)) return;
  await make();
  await writeFile(marker, '');
}

export async function runPeerBench(o: PeerBenchOptions): Promise<PeerReport> {
  const config = PRECISION_SHAPES[o.shape];
  const parameters = parameterCount(config);
  // The precision benchmark's names and seed: a --dir shared with it reuses its checkpoint and folders.
  const checkpoint = join(o.dir, `checkpoint-${o.shape}`);
  await once(checkpoint, async () => {
    writeCheckpoint(randomCheckpointContents(config, 1), checkpoint, { family: 'llama', dtype: 'BF16', shards: Math.max(1, Math.ceil((parameters * 2) / (4 * GiB))) });
  });
  const paths = new Map<PeerWidth, { folder: string; gguf: string }>();
  for (const width of o.widths) {
    const folder = join(o.dir, `${o.shape}-${width}`);
    const gguf = join(o.dir, `${o.shape}-${PEER_WIDTHS[width]}.gguf`);
    await once(folder, async () => {
      await importCheckpoint(checkpoint, folder, { dtype: width as ImportDtype });
    });
    await once(gguf, async () => {
      writeLlamaGguf(checkpoint, gguf, PEER_WIDTHS[width]);
    });
    paths.set(width, { folder, gguf });
  }
  o.log(`${o.shape}: ${(parameters / 1e6).toFixed(0)}M parameters; folders and GGUF files in ${o.dir}`);

  const session = (width: PeerWidth): LlamaCppSession => ({
    peerDir: o.peerDir,
    gguf: paths.get(width)?.gguf as string,
    threads: o.threads,
    chunkSize: o.chunkSize,
    kv: o.kv,
    vocab: config.vocab_size,
    flashAttention: o.flashAttention,
  });
  const f32 = paths.get('f32');
  let agreement: Agreement | null = null;
  if (f32) {
    const greedy = { tokens: o.validateTokens, generate: o.validateGenerate };
    const ours = await o.children.oursGreedy({ modelDir: f32.folder, chunkSize: Math.min(o.chunkSize, o.validateTokens), threads: o.threads, ...greedy });
    const peer = await o.children.peerGreedy({ ...session('f32'), chunkSize: Math.min(o.chunkSize, o.validateTokens), ...greedy });
    agreement = compareGreedy(ours, peer, greedy);
    o.log(
      `greedy check at f32, ${greedy.tokens} prompt tokens then ${greedy.generate}: ${(agreement.agreement * 100).toFixed(0)}% of the tokens agree` +
        `${agreement.firstDifference === null ? '' : ` (first difference at ${agreement.firstDifference})`}; max |dlogit| at the last prompt position ${agreement.maxAbsLogit.toExponential(2)}`,
    );
  }

  const runs = new Map(o.widths.map((w) => [w, { ours: [] as PrecisionRun[], llamaCpp: [] as LlamaCppRun[] }]));
  for (let r = 0; r < o.repeats; r++) {
    for (const width of o.widths) {
      const { folder } = paths.get(width) as { folder: string };
      const got = runs.get(width) as { ours: PrecisionRun[]; llamaCpp: LlamaCppRun[] };
      const ours = async () => got.ours.push(await o.children.oursRun({ modelDir: folder, tokens: o.tokens, chunkSize: o.chunkSize, decode: o.decode, threads: o.threads, kv: o.kv }));
      const peer = async () => got.llamaCpp.push(await o.children.peerRun({ ...session(width), tokens: o.tokens, decode: o.decode }));
      // Alternate which engine goes first, so drift in the machine's load falls on both alike.
      for (const run of r % 2 === 0 ? [ours, peer] : [peer, ours]) await run();
      const [a, b] = [got.ours.at(-1) as PrecisionRun, got.llamaCpp.at(-1) as LlamaCppRun];
      o.log(
        `run ${r + 1}/${o.repeats} ${width}: prefill ${a.prefillTokensPerSecond.toFixed(0)} vs ${b.prefillTokensPerSecond.toFixed(0)} tok/s, ` +
          `decode ${a.decodeTokensPerSecond.toFixed(1)} vs ${b.decodeTokensPerSecond.toFixed(1)} tok/s, peak ${a.peakRssMiB.toFixed(0)} vs ${b.peakRssMiB.toFixed(0)} MiB (ours vs llama.cpp)`,
      );
    }
  }

  const rows: PeerRow[] = [];
  for (const width of o.widths) {
    const { folder, gguf } = paths.get(width) as { folder: string; gguf: string };
    const got = runs.get(width) as { ours: PrecisionRun[]; llamaCpp: LlamaCppRun[] };
    const ours = { ...medians(got.ours), runs: got.ours };
    const llamaCpp = { ...medians(got.llamaCpp), runs: got.llamaCpp };
    rows.push({
      width,
      ggmlType: PEER_WIDTHS[width],
      folderBytes: await folderBytes(join(folder, 'onnx')),
      ggufBytes: (await stat(gguf)).size,
      ours,
      llamaCpp,
      ratios: {
        prefillTokensPerSecond: ours.prefillTokensPerSecond / llamaCpp.prefillTokensPerSecond,
        decodeTokensPerSecond: ours.decodeTokensPerSecond / llamaCpp.decodeTokensPerSecond,
        peakRssMiB: ours.peakRssMiB / llamaCpp.peakRssMiB,
      },
    });
  }
  for (const line of peerTable(rows, o.repeats)) o.log(line);
  const bars = checkPeerBars(rows, agreement, o.tokens);
  for (const b of bars) o.log(`${b.pass ? 'PASS' : 'FAIL'}  ${b.name}: ${b.measured} (bar ${b.bar})`);
  const { shape, tokens, chunkSize, decode, repeats, threads, kv, flashAttention } = o;
  return { shape, tokens, chunkSize, decode, repeats, threads, kv, flashAttention, parameters, agreement, rows, bars };
}

function medians(runs: readonly Medians[]): Medians {
  return {
    prefillTokensPerSecond: median(runs.map((r) => r.prefillTokensPerSecond)),
    decodeTokensPerSecond: median(runs.map((r) => r.decodeTokensPerSecond)),
    peakRssMiB: median(runs.map((r) => r.peakRssMiB)),
  };
}

export function compareGreedy(ours: GreedyRun, peer: GreedyRun, o: GreedyOptions): Agreement {
  const n = Math.min(ours.tokenIds.length, peer.tokenIds.length);
  let same = 0;
  let first: number | null = null;
  for (let i = 0; i < n; i++) {
    if (ours.tokenIds[i] === peer.tokenIds[i]) same++;
    else first ??= i;
  }
  let maxAbs = 0;
  ours.lastLogits.forEach((v, i) => {
    maxAbs = Math.max(maxAbs, Math.abs(v - (peer.lastLogits[i] as number)));
  });
  return { ...o, agreement: same / o.generate, firstDifference: first, maxAbsLogit: maxAbs, ours: ours.tokenIds, llamaCpp: peer.tokenIds };
}

/** The issues' bars: prefill and peak RSS at every width (precision), decode after the fold at f32 (batching), and the greedy check. */
export function checkPeerBars(rows: readonly PeerRow[], agreement: Agreement | null, tokens: number): Bar[] {
  const bars: Bar[] = [];
  if (agreement) {
    const pct = `${(agreement.agreement * 100).toFixed(0)}%`;
    bars.push({ name: `greedy tokens at f32 match llama.cpp's (${agreement.generate} tokens)`, measured: pct, bar: '100%', pass: agreement.agreement === 1 });
  }
  for (const r of rows) {
    const vs = (a: number, b: number, unit: string) => `${(a / b).toFixed(2)}x (${a.toFixed(unit === 'MiB' ? 0 : 1)} / ${b.toFixed(unit === 'MiB' ? 0 : 1)} ${unit})`;
    const label = `${r.width} vs ${r.ggmlType}`;
    bars.push({ name: `prefill ${label}: ours / llama.cpp`, measured: vs(r.ours.prefillTokensPerSecond, r.llamaCpp.prefillTokensPerSecond, 'tok/s'), bar: '>= 1.0x', pass: r.ratios.prefillTokensPerSecond >= 1 });
    bars.push({ name: `peak RSS ${label}: ours / llama.cpp`, measured: vs(r.ours.peakRssMiB, r.llamaCpp.peakRssMiB, 'MiB'), bar: '<= 1.2x', pass: r.ratios.peakRssMiB <= 1.2 });
    if (r.width === 'f32') {
      bars.push({
        name: `decode after a ${tokens}-token fold, f32: ours / llama.cpp`,
        measured: vs(r.ours.decodeTokensPerSecond, r.llamaCpp.decodeTokensPerSecond, 'tok/s'),
        bar: '>= 1.0x',
        pass: r.ratios.decodeTokensPerSecond >= 1,
      });
    }
  }
  return bars;
}

const pad = (v: string | number, n: number) => String(v).padStart(n);

/** The table: each width's two engines, then the ratio line. */
export function peerTable(rows: readonly PeerRow[], repeats: number): string[] {
  const lines = [`medians of ${repeats}:`, `${pad('width', 6)} ${pad('engine', 16)} ${pad('weights MiB', 12)} ${pad('prefill t/s', 12)} ${pad('decode t/s', 11)} ${pad('peak MiB', 9)}`];
  for (const r of rows) {
    const line = (engine: string, bytes: number, m: Medians) =>
      `${pad(r.width, 6)} ${pad(engine, 16)} ${pad((bytes / MiB).toFixed(0), 12)} ${pad(m.prefillTokensPerSecond.toFixed(1), 12)} ${pad(m.decodeTokensPerSecond.toFixed(1), 11)} ${pad(m.peakRssMiB.toFixed(0), 9)}`;
    lines.push(line('kvfold', r.folderBytes, r.ours), line(`llama.cpp ${r.ggmlType}`, r.ggufBytes, r.llamaCpp));
    const x = (v: number) => `${v.toFixed(2)}x`;
    lines.push(`${pad(r.width, 6)} ${pad('ours/llama.cpp', 16)} ${pad('', 12)} ${pad(x(r.ratios.prefillTokensPerSecond), 12)} ${pad(x(r.ratios.decodeTokensPerSecond), 11)} ${pad(x(r.ratios.peakRssMiB), 9)}`);
  }
  return lines;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(dir)) total += (await stat(join(dir, f))).size;
  return total;
}
