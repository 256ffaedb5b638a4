/**
 * The precision benchmark: one random Llama-shaped BF16 checkpoint, imported at each weight width
 * (f32, f16, int8, int4) as a user would, then for each folder, in a fresh process, a fold of N
 * tokens and a decode after it (prefill and decode tokens/s, peak RSS), and its fidelity beside
 * the float32 folder (max |Δlogit|, greedy agreement, NLL of the float32 model's own continuation).
 * It prints a table and the precision issue's bars for the shape, and returns everything for a
 * JSON report.
 */
import { existsSync } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ImportDtype, importCheckpoint, writeCheckpoint } from '@kvfold/model-zoo';
import type { KvWidth } from '@kvfold/fold-core';
import type { Bar } from '../engine/engine-bench.ts';
import type { Fidelity, FidelityOptions, PrecisionRun, PrecisionRunOptions } from './measure-precision.ts';
import { PRECISION_SHAPES, type PrecisionShape, parameterCount, randomCheckpointContents } from './shapes.ts';

export interface PrecisionBenchOptions {
  readonly shape: PrecisionShape;
  readonly dtypes: readonly ImportDtype[];
  readonly tokens: number;
  readonly chunkSize: number;
  readonly decode: number;
  readonly threads: number;
  /** The width the measured folds hold their cache at. */
  readonly kv: KvWidth;
  /** Prompt tokens of the fidelity comparison (the float32 model then continues for 64). */
  readonly fidelityTokens: number;
  /** Where the checkpoint and the folders are written; ones already complete there are reused. */
  readonly dir: string;
  readonly runChild: (o: PrecisionRunOptions) => Promise<PrecisionRun>;
  readonly fidelityChild: (o: FidelityOptions) => Promise<Fidelity>;
  readonly log: (line: string) => void;
}

export interface PrecisionRow {
  readonly dtype: ImportDtype;
  readonly folderBytes: number;
  readonly importMs: number | null;
  readonly run: PrecisionRun;
  readonly fidelity: Fidelity | null;
}

export interface PrecisionReport {
  readonly shape: PrecisionShape;
  readonly parameters: number;
  readonly tokens: number;
  readonly chunkSize: number;
  readonly decode: number;
  readonly threads: number;
  readonly kv: KvWidth;
  readonly rows: PrecisionRow[];
  readonly bars: Bar[];
}

/** Tokens the float32 model continues its prompt with, for the fidelity comparison. */
const CONTINUATION = 64;
const GiB = 2 ** 30;
/** A file written beside a checkpoint or folder once it is whole, so one cut off midway is made again. */
const done = (path: string) => `${path}.complete`;

export async function runPrecisionBench(o: PrecisionBenchOptions): Promise<PrecisionReport> {
  const config = PRECISION_SHAPES[o.shape];
  const parameters = parameterCount(config);
  const checkpoint = join(o.dir, `checkpoint-${o.shape}`);
  if (!existsSync(done(checkpoint))) {
    const started = performance.now();
    const bytes = parameters * 2;
    writeCheckpoint(randomCheckpointContents(config, 1), checkpoint, { family: 'llama', dtype: 'BF16', shards: Math.max(1, Math.ceil(bytes / (4 * GiB))) });
    await writeFile(done(checkpoint), '');
    o.log(`checkpoint ${o.shape}: ${(parameters / 1e6).toFixed(0)}M parameters, BF16, ${(bytes / GiB).toFixed(2)} GiB, written in ${((performance.now() - started) / 1000).toFixed(0)} s`);
  }
  const rows: PrecisionRow[] = [];
  o.log(header());
  for (const dtype of o.dtypes) {
    const folder = join(o.dir, `${o.shape}-${dtype}`);
    let importMs: number | null = null;
    if (!existsSync(done(folder))) {
      const started = performance.now();
      await importCheckpoint(checkpoint, folder, { dtype });
      importMs = performance.now() - started;
      await writeFile(done(folder), '');
    }
    const run = await o.runChild({ modelDir: folder, tokens: o.tokens, chunkSize: o.chunkSize, decode: o.decode, threads: o.threads, kv: o.kv });
    const reference = join(o.dir, `${o.shape}-f32`);
    const fidelity =
      dtype !== 'f32' && o.dtypes.includes('f32')
        ? await o.fidelityChild({ referenceDir: reference, modelDir: folder, tokens: o.fidelityTokens, continuation: CONTINUATION, chunkSize: o.chunkSize, threads: o.threads })
        : null;
    const row: PrecisionRow = { dtype, folderBytes: await folderBytes(join(folder, 'onnx')), importMs, run, fidelity };
    rows.push(row);
    o.log(line(row));
  }
  const bars = checkPrecisionBars(o.shape, rows);
  for (const b of bars) o.log(`${b.pass ? 'PASS' : 'FAIL'}  ${b.name}: ${b.measured} (bar ${b.bar})`);
  return { shape: o.shape, parameters, tokens: o.tokens, chunkSize: o.chunkSize, decode: o.decode, threads: o.threads, kv: o.kv, rows, bars };
}

/** The precision issue's bars that this shape's rows can decide. */
export function checkPrecisionBars(shape: PrecisionShape, rows: readonly PrecisionRow[]): Bar[] {
  const of = (d: ImportDtype) => rows.find((r) => r.dtype === d);
  const [f32, int4] = [of('f32'), of('int4')];
  const bars: Bar[] = [];
  if (shape === '123m' && f32 && int4) {
    const size = int4.folderBytes / f32.folderBytes;
    bars.push({ name: 'int4 folder against the f32 folder, on disk', measured: `${size.toFixed(3)}x`, bar: '<= 0.30x', pass: size <= 0.3 });
    const rss = int4.run.peakRssMiB / f32.run.peakRssMiB;
    bars.push({ name: 'int4 fold peak RSS against the f32 fold', measured: `${rss.toFixed(3)}x (${int4.run.peakRssMiB.toFixed(0)} / ${f32.run.peakRssMiB.toFixed(0)} MiB)`, bar: '<= 0.5x', pass: rss <= 0.5 });
  }
  if (shape === '8b' && int4) {
    const gib = int4.run.peakRssMiB / 1024;
    bars.push({ name: 'int4 import folds with peak RSS', measured: `${gib.toFixed(2)} GiB (${int4.run.kvMiB.toFixed(0)} MiB of it the cache)`, bar: '<= 7 GiB', pass: gib <= 7 });
  }
  return bars;
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const f of await readdir(dir)) total += (await stat(join(dir, f))).size;
  return total;
}

const pad = (v: string | number, n: number) => String(v).padStart(n);

function header(): string {
  return `${pad('dtype', 6)} ${pad('folder MiB', 11)} ${pad('load s', 7)} ${pad('loaded MiB', 11)} ${pad('prefill t/s', 12)} ${pad('decode t/s', 11)} ${pad('peak MiB', 9)} ${pad('max|dlogit|', 12)} ${pad('greedy', 7)} ${pad('NLL', 14)}`;
}

function line(r: PrecisionRow): string {
  const f = r.fidelity;
  return (
    `${pad(r.dtype, 6)} ${pad((r.folderBytes / 2 ** 20).toFixed(0), 11)} ${pad((r.run.loadMs / 1000).toFixed(1), 7)} ${pad(r.run.loadedRssMiB.toFixed(0), 11)} ` +
    `${pad(r.run.prefillTokensPerSecond.toFixed(1), 12)} ${pad(r.run.decodeTokensPerSecond.toFixed(1), 11)} ${pad(r.run.peakRssMiB.toFixed(0), 9)} ` +
    `${pad(f ? f.maxAbsLogit.toFixed(3) : '-', 12)} ${pad(f ? `${(f.greedyAgreement * 100).toFixed(1)}%` : '-', 7)} ${pad(f ? `${f.nll.toFixed(3)} / ${f.referenceNll.toFixed(3)}` : '-', 14)}`
  );
}
