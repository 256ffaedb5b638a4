/**
 * `kvfold bench fold`: fold N tokens at several chunk sizes and one single pass where it fits,
 * each configuration in its own process so peak RSS is that configuration's alone.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { FoldMeasurement } from '@kvfold/bench';
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { list, parseTokenCount, positiveInt } from '../options.ts';
import { registerBatchBench } from './bench-batch.ts';
import { kvfoldChild } from './bench-child.ts';
import { registerDeviceBench, registerEngineBench } from './bench-engine.ts';
import { registerPrecisionBench } from './bench-precision.ts';
import { registerLlamaCppBench } from './bench-llamacpp.ts';

interface BenchOptions {
  model?: string;
  vocab?: number;
  untied?: boolean;
  tokens: number[];
  chunkSizes: number[];
  singlePassLimitMib: number;
  threads?: number;
  out: string;
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks (each prints a table and writes JSON)');
  registerEngineBench(bench);
  registerDeviceBench(bench);
  registerPrecisionBench(bench);
  registerBatchBench(bench);
  registerLlamaCppBench(bench);
  bench
    .command('fold')
    .description('fold throughput and peak RSS by chunk size, beside one single-pass forward where it fits')
    .option('--model <dir>', 'model folder (default: tiny-llama, built into a temporary folder)')
    .option('--vocab <n>', "the built tiny-llama's vocabulary rows, e.g. 128256 for a real model's lm_head", positiveInt('--vocab'))
    .option('--untied', 'build tiny-llama with an untied lm_head')
    .option('--tokens <list>', 'document lengths, e.g. 8k,32k', list('--tokens', parseTokenCount), [8192, 32768])
    .option('--chunk-sizes <list>', 'chunk sizes to fold with', list('--chunk-sizes', parseTokenCount), [64, 256, 1024])
    .option('--single-pass-limit-mib <n>', 'skip the single pass when its attention scores would exceed this', positiveInt('--single-pass-limit-mib'), 6144)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .option('--out <file>', 'JSON result file', 'bench-results/fold.json')
    .action(async (opts: BenchOptions) => runFoldBench(opts));

  bench
    .command('checkpoint')
    .description('fold slowdown with checkpoints every N steps against none, same document, each run in its own process')
    .option('--model <dir>', 'model folder (default: tiny-llama, built into a temporary folder)')
    .option('--tokens <n>', 'document length', (v) => parseTokenCount('--tokens', v), 32768)
    .option('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'), 256)
    .option('--every <n>', 'steps between checkpoints', positiveInt('--every'), 8)
    .option('--repeats <n>', 'runs of each configuration (the median is reported)', positiveInt('--repeats'), 5)
    .option('--store <uri>', 'checkpoint store (default: a temporary folder)')
    .option('--out <file>', 'JSON result file', 'bench-results/checkpoint.json')
    .action(async (opts: CheckpointBenchOptions) => runCheckpointBench(opts));

  bench
    .command('fold-one', { hidden: true })
    .requiredOption('--model <dir>')
    .requiredOption('--tokens <n>', '', (v) => parseTokenCount('--tokens', v))
    .requiredOption('--chunk-size <n>', '', positiveInt('--chunk-size'))
    .option('--threads <n>', '', positiveInt('--threads'))
    .action(async (opts: { model: string; tokens: number; chunkSize: number; threads?: number }) => {
      const [{ loadModel }, { measureFold }] = await Promise.all([import('@kvfold/onnx'), import('@kvfold/bench')]);
      const model = await loadModel(opts.model, opts.threads ? { threads: opts.threads } : {});
      try {
        const m = await measureFold(model, opts.tokens, opts.chunkSize);
        process.stdout.write(`${JSON.stringify(m)}\n`);
      } finally {
        await model.close();
      }
    });
}

interface Row extends FoldMeasurement {
  readonly mode: 'fold' | 'single-pass';
}

async function runFoldBench(opts: BenchOptions): Promise<void> {
  const [{ tinyLlamaSpec, writeModelFolder }, { loadModel }] = await Promise.all([import('@kvfold/model-zoo'), import('@kvfold/onnx')]);
  let modelDir = opts.model ? resolve(opts.model) : '';
  let scratch: string | null = null;
  if (!modelDir) {
    scratch = await mkdtemp(join(tmpdir(), 'kvfold-bench-'));
    modelDir = join(scratch, 'tiny-llama');
    await writeModelFolder(tinyLlamaSpec({ ...(opts.vocab ? { vocabSize: opts.vocab } : {}), ...(opts.untied ? { untied: true } : {}) }), modelDir);
  } else if (opts.vocab || opts.untied) throw new CliError('--vocab and --untied shape the built tiny-llama: drop them with --model');
  try {
    const probe = await loadModel(modelDir);
    const { folder } = probe;
    await probe.close();
    const heads = folder.config.num_attention_heads;
    const rows: Row[] = [];
    const print = (r: Row) =>
      process.stdout.write(
        `${pad(r.tokens, 8)} ${pad(r.mode === 'fold' ? r.chunkSize : 'single', 8)} ${pad(r.steps, 6)} ${pad(r.tokensPerSecond.toFixed(0), 9)} ${pad((r.foldMs / 1000).toFixed(2), 8)} ${pad(r.peakRssMiB.toFixed(0), 9)} ${pad((r.kvBytes / 2 ** 20).toFixed(1), 8)}\n`,
      );
    process.stdout.write(`model ${modelDir}\n${pad('tokens', 8)} ${pad('chunk', 8)} ${pad('steps', 6)} ${pad('tok/s', 9)} ${pad('fold s', 8)} ${pad('peak MiB', 9)} ${pad('KV MiB', 8)}\n`);
    for (const n of opts.tokens) {
      // Attention scores of one layer in a single pass: heads x n x n float32, held about three times (scores, masked, softmax).
      const singleMib = (3 * heads * n * n * 4) / 2 ** 20;
      if (singleMib <= opts.singlePassLimitMib) {
        const r: Row = { mode: 'single-pass', ...(await child(modelDir, n, n, opts.threads)) };
        rows.push(r);
        print(r);
      } else {
        process.stdout.write(`${pad(n, 8)} ${pad('single', 8)} skipped: its attention scores need ~${(singleMib / 1024).toFixed(1)} GiB (limit ${opts.singlePassLimitMib} MiB)\n`);
      }
      for (const c of opts.chunkSizes) {
        if (c >= n) continue;
        const r: Row = { mode: 'fold', ...(await child(modelDir, n, c, opts.threads)) };
        rows.push(r);
        print(r);
      }
    }
    const ratios = rows
      .filter((r) => r.mode === 'fold')
      .flatMap((r) => {
        const single = rows.find((s) => s.mode === 'single-pass' && s.tokens === r.tokens);
        return single
          ? [{ tokens: r.tokens, chunkSize: r.chunkSize, speedVsSinglePass: r.tokensPerSecond / single.tokensPerSecond, peakRssVsSinglePass: r.peakRssMiB / single.peakRssMiB }]
          : [];
      });
    for (const q of ratios) {
      process.stdout.write(`${q.tokens} tokens, chunk ${q.chunkSize}: ${q.speedVsSinglePass.toFixed(2)}x the single pass's tokens/s at ${q.peakRssVsSinglePass.toFixed(2)}x its peak RSS\n`);
    }
    const out = resolve(opts.out);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify({ benchmark: 'fold', model: modelDir, date: new Date().toISOString(), rows, ratios }, null, 2)}\n`);
    process.stdout.write(`wrote ${out}\n`);
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs `bench fold-one` in a fresh process. */
function child(modelDir: string, tokens: number, chunkSize: number, threads?: number): Promise<FoldMeasurement> {
  const args = ['bench', 'fold-one', '--model', modelDir, '--tokens', String(tokens), '--chunk-size', String(chunkSize), ...(threads ? ['--threads', String(threads)] : [])];
  return kvfoldChild<FoldMeasurement>(args, `benchmark of ${tokens} tokens in chunks of ${chunkSize}`);
}

const pad = (v: string | number, w: number) => String(v).padStart(w);

interface CheckpointBenchOptions {
  model?: string;
  tokens: number;
  chunkSize: number;
  every: number;
  repeats: number;
  store?: string;
  out: string;
}

interface FoldRun {
  foldMs: number;
  tokensPerSecond: number;
  checkpoint?: { segments: number; bytes: number };
  kvBytes: number;
}

/** Runs `kvfold fold --json` in a fresh process and returns its timings. */
async function foldChild(args: string[]): Promise<FoldRun> {
  const r = await kvfoldChild<{ timings: { foldMs: number; tokensPerSecond: number }; checkpoint?: FoldRun['checkpoint']; kvBytes: number }>(['fold', ...args, '--json'], `kvfold fold ${args.join(' ')}`);
  return { foldMs: r.timings.foldMs, tokensPerSecond: r.timings.tokensPerSecond, kvBytes: r.kvBytes, ...(r.checkpoint ? { checkpoint: r.checkpoint } : {}) };
}

async function runCheckpointBench(opts: CheckpointBenchOptions): Promise<void> {
  const [{ tinyLlamaSpec, writeModelFolder }, { loadModel }, { vocabularyText }] = await Promise.all([import('@kvfold/model-zoo'), import('@kvfold/onnx'), import('@kvfold/bench')]);
  const scratch = await mkdtemp(join(tmpdir(), 'kvfold-bench-ckpt-'));
  try {
    const modelDir = opts.model ? resolve(opts.model) : join(scratch, 'tiny-llama');
    if (!opts.model) await writeModelFolder(tinyLlamaSpec(), modelDir);
    const probe = await loadModel(modelDir);
    const text = vocabularyText(probe.tokenizer, probe.decoder.layout.vocabSize, opts.tokens);
    await probe.close();
    const doc = join(scratch, 'doc.txt');
    await writeFile(doc, text);
    const base = [doc, '--model', modelDir, '--chunk-size', String(opts.chunkSize)];
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
    const plain: FoldRun[] = [];
    const checkpointed: FoldRun[] = [];
    for (let i = 0; i < opts.repeats; i++) {
      // Alternate the two so drift in machine load hits both alike.
      plain.push(await foldChild(base));
      const store = opts.store ?? join(scratch, `store-${i}`);
      checkpointed.push(await foldChild([...base, '--checkpoint', store, '--checkpoint-every', String(opts.every), '--fresh']));
      process.stdout.write(`run ${i + 1}/${opts.repeats}: ${(plain.at(-1) as FoldRun).foldMs.toFixed(0)} ms plain, ${(checkpointed.at(-1) as FoldRun).foldMs.toFixed(0)} ms with checkpoints\n`);
    }
    const plainMs = median(plain.map((r) => r.foldMs));
    const ckptMs = median(checkpointed.map((r) => r.foldMs));
    const last = checkpointed.at(-1) as FoldRun;
    const result = {
      benchmark: 'checkpoint-overhead',
      model: modelDir,
      tokens: opts.tokens,
      chunkSize: opts.chunkSize,
      every: opts.every,
      repeats: opts.repeats,
      plainFoldMs: plainMs,
      checkpointedFoldMs: ckptMs,
      slowdown: ckptMs / plainMs - 1,
      segments: last.checkpoint?.segments ?? 0,
      uploadedBytes: last.checkpoint?.bytes ?? 0,
      finalKvBytes: last.kvBytes,
      uploadedOverFinalCache: (last.checkpoint?.bytes ?? 0) / last.kvBytes,
      date: new Date().toISOString(),
    };
    process.stdout.write(
      `${opts.tokens} tokens, chunk ${opts.chunkSize}, checkpoint every ${opts.every} steps: fold ${plainMs.toFixed(0)} ms plain vs ${ckptMs.toFixed(0)} ms checkpointed (median of ${opts.repeats}): slowdown ${(result.slowdown * 100).toFixed(1)}%\n` +
        `uploaded ${(result.uploadedBytes / 2 ** 20).toFixed(2)} MiB in ${result.segments} segments for a final cache of ${(result.finalKvBytes / 2 ** 20).toFixed(2)} MiB: ${result.uploadedOverFinalCache.toFixed(3)}x\n`,
    );
    const out = resolve(opts.out);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    process.stdout.write(`wrote ${out}\n`);
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
