/**
 * The engine benchmark: KV-Fold's fold beside the plain onnxruntime-node loop on the same folder,
 * and both against ONNX Runtime's MatMul, for tiny-llama, recall and kv-heavy. Every run is a
 * fresh process (the caller spawns it), runs are interleaved, and the medians of paired runs are
 * compared. It prints a table and the bars it checks, and returns everything for a JSON report.
 */
import type { EngineMeasurement, EngineRunOptions } from './measure-engine.ts';

export type BenchModel = 'tiny-llama' | 'recall' | 'kv-heavy';

export interface BenchCase {
  readonly model: BenchModel;
  readonly tokens: number;
  /** Also run the plain loop, for the host-overhead comparison. */
  readonly peer: boolean;
}

/** The cases the engine's bars are measured on. */
export const DEFAULT_CASES: readonly BenchCase[] = [
  { model: 'tiny-llama', tokens: 8192, peer: true },
  { model: 'tiny-llama', tokens: 32768, peer: true },
  { model: 'recall', tokens: 8192, peer: true },
  { model: 'recall', tokens: 32768, peer: true },
  { model: 'recall', tokens: 65536, peer: false },
  { model: 'kv-heavy', tokens: 16384, peer: false },
];

export interface EngineBenchOptions {
  readonly cases: readonly BenchCase[];
  readonly chunkSize: number;
  readonly threads: number;
  /** Runs of each case and engine; medians are reported. */
  readonly repeats: number;
  /** Folder of each model. */
  readonly modelDir: (model: BenchModel) => string;
  /** Runs one measurement in a fresh process. */
  readonly runChild: (options: EngineRunOptions) => Promise<EngineMeasurement>;
  readonly log: (line: string) => void;
}

export interface CaseResult {
  readonly model: BenchModel;
  readonly tokens: number;
  readonly kvfold: EngineMeasurement;
  readonly plain: EngineMeasurement | null;
  readonly runs: { readonly kvfold: EngineMeasurement[]; readonly plain: EngineMeasurement[] };
}

export interface Bar {
  readonly name: string;
  readonly measured: string;
  readonly bar: string;
  readonly pass: boolean;
}

export interface EngineBenchReport {
  readonly chunkSize: number;
  readonly threads: number;
  readonly repeats: number;
  /**
   * ONNX Runtime's MatMul GFLOP/s: every run measures it right after its fold, on the same threads;
   * utilisation is taken against the best of them (the machine at its fastest in this run).
   */
  readonly ceiling: { readonly gflops: number; readonly lowest: number };
  readonly results: CaseResult[];
  readonly bars: Bar[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] as number;

/** The run whose tokens/s is the median of the runs. */
function medianRun(runs: EngineMeasurement[]): EngineMeasurement {
  const m = median(runs.map((r) => r.tokensPerSecond));
  return runs.find((r) => r.tokensPerSecond === m) as EngineMeasurement;
}

export async function runEngineBench(o: EngineBenchOptions): Promise<EngineBenchReport> {
  const results: CaseResult[] = [];
  o.log(header());
  for (const c of o.cases) {
    const runs = { kvfold: [] as EngineMeasurement[], plain: [] as EngineMeasurement[] };
    const base = { modelDir: o.modelDir(c.model), tokens: c.tokens, chunkSize: o.chunkSize, threads: o.threads };
    for (let i = 0; i < o.repeats; i++) {
      // Interleaved, so drift in the machine's speed hits both engines alike.
      runs.kvfold.push(await o.runChild({ ...base, engine: 'kvfold' }));
      o.log(row(c.model, runs.kvfold.at(-1) as EngineMeasurement));
      if (c.peer) {
        runs.plain.push(await o.runChild({ ...base, engine: 'plain' }));
        o.log(row(c.model, runs.plain.at(-1) as EngineMeasurement));
      }
    }
    results.push({ model: c.model, tokens: c.tokens, kvfold: medianRun(runs.kvfold), plain: c.peer ? medianRun(runs.plain) : null, runs });
  }
  const all = results.flatMap((r) => [...r.runs.kvfold, ...r.runs.plain]).map((m) => m.ceiling.gflops);
  const ceiling = { gflops: Math.max(...all), lowest: Math.min(...all) };
  const bars = checkBars(results, ceiling.gflops);
  o.log('');
  o.log(`ONNX Runtime MatMul ceiling: ${ceiling.gflops.toFixed(1)} GFLOP/s (best of the runs; lowest ${ceiling.lowest.toFixed(1)})`);
  for (const b of bars) o.log(`${b.pass ? 'PASS' : 'FAIL'}  ${b.name}: ${b.measured} (bar: ${b.bar})`);
  return { chunkSize: o.chunkSize, threads: o.threads, repeats: o.repeats, ceiling, results, bars };
}

/** The engine's bars, on the medians; utilisation against `ceiling` GFLOP/s. */
export function checkBars(results: readonly CaseResult[], ceiling: number): Bar[] {
  const bars: Bar[] = [];
  const find = (model: BenchModel, tokens: number) => results.find((r) => r.model === model && r.tokens === tokens);
  for (const [model, tokens] of [
    ['recall', 65536],
    ['kv-heavy', 16384],
  ] as const) {
    const r = find(model, tokens)?.kvfold;
    if (!r) continue;
    const limit = r.loadedRssMiB + 1.5 * r.kvMiB + r.workspaceMiB;
    bars.push({
      name: `${model} ${tokens / 1024}K peak RSS`,
      measured: `${r.peakRssMiB.toFixed(0)} MiB = loaded ${r.loadedRssMiB.toFixed(0)} + ${r.cacheCopiesAtPeak.toFixed(2)} x KV ${r.kvMiB.toFixed(0)} + workspace ${r.workspaceMiB.toFixed(0)}`,
      bar: `<= loaded + 1.5 x KV + workspace = ${limit.toFixed(0)} MiB`,
      pass: r.peakRssMiB <= limit,
    });
  }
  for (const [model, tokens, floor] of [
    ['recall', 65536, 0.45],
    ['tiny-llama', 32768, 0.25],
  ] as const) {
    const r = find(model, tokens)?.kvfold;
    if (!r) continue;
    const mfu = r.achievedGflops / ceiling;
    bars.push({
      name: `${model} ${tokens / 1024}K model-FLOP utilisation`,
      measured: `${(mfu * 100).toFixed(1)}% (${r.achievedGflops.toFixed(1)} of ${ceiling.toFixed(1)} GFLOP/s, ${r.threads} threads)`,
      bar: `>= ${floor * 100}%`,
      pass: mfu >= floor,
    });
  }
  for (const r of results) {
    if (!r.plain) continue;
    const speed = r.kvfold.tokensPerSecond / r.plain.tokensPerSecond;
    const rss = r.kvfold.peakRssMiB / r.plain.peakRssMiB;
    bars.push({
      name: `${r.model} ${r.tokens / 1024}K against the plain loop`,
      measured: `${speed.toFixed(2)}x its tokens/s, ${rss.toFixed(2)}x its peak RSS (${r.kvfold.tokensPerSecond.toFixed(0)} vs ${r.plain.tokensPerSecond.toFixed(0)} tok/s, ${r.kvfold.peakRssMiB.toFixed(0)} vs ${r.plain.peakRssMiB.toFixed(0)} MiB)`,
      bar: 'tokens/s >= 0.97x and peak RSS <= 1.0x',
      pass: speed >= 0.97 && rss <= 1,
    });
  }
  const steady = results.every((r) => r.kvfold.copiedBytesPerStep && r.kvfold.copiedBytesPerStep.max === r.kvfold.copiedBytesPerStep.mean);
  bars.push({
    name: 'bytes copied per step',
    measured: results.map((r) => `${r.model} ${r.tokens / 1024}K ${(r.kvfold.copiedBytesPerStep?.max ?? 0) / 1024 | 0} KiB`).join(', '),
    bar: 'the same every step, whatever the cache holds',
    pass: steady,
  });
  return bars;
}

const pad = (v: string | number, w: number) => String(v).padStart(w);

function header(): string {
  return [
    pad('model', 10),
    pad('tokens', 7),
    pad('engine', 7),
    pad('tok/s', 8),
    pad('peak MiB', 9),
    pad('loaded', 7),
    pad('KV MiB', 7),
    pad('work', 6),
    pad('xKV', 5),
    pad('copy/step', 10),
    pad('out/step', 9),
    pad('GFLOP/s', 8),
    pad('ceiling', 8),
    pad('MFU', 6),
  ].join(' ');
}

function row(model: string, m: EngineMeasurement): string {
  const kib = (b: number | null | undefined) => (b === null || b === undefined ? '-' : `${(b / 1024).toFixed(0)}K`);
  return [
    pad(model, 10),
    pad(m.tokens, 7),
    pad(m.engine, 7),
    pad(m.tokensPerSecond.toFixed(0), 8),
    pad(m.peakRssMiB.toFixed(0), 9),
    pad(m.loadedRssMiB.toFixed(0), 7),
    pad(m.kvMiB.toFixed(0), 7),
    pad(m.workspaceMiB.toFixed(0), 6),
    pad(m.cacheCopiesAtPeak.toFixed(2), 5),
    pad(kib(m.copiedBytesPerStep?.max), 10),
    pad(kib(m.outputBytesPerStep), 9),
    pad(m.achievedGflops.toFixed(1), 8),
    pad(m.ceiling.gflops.toFixed(1), 8),
    pad(`${(m.mfu * 100).toFixed(1)}%`, 6),
  ].join(' ');
}
