/**
 * `kvfold bench fold`: fold N tokens at several chunk sizes and one single pass where it fits,
 * each configuration in its own process so peak RSS is that configuration's alone.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { tinyLlamaSpec, writeModelFolder } from '@kvfold/model-zoo';
import { loadModel } from '@kvfold/onnx';
import { measureFold, type FoldMeasurement } from '@kvfold/runner';
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { list, parseTokenCount, positiveInt } from '../options.ts';

interface BenchOptions {
  model?: string;
  tokens: number[];
  chunkSizes: number[];
  singlePassLimitMib: number;
  threads?: number;
  out: string;
}

export function registerBench(program: Command): void {
  const bench = program.command('bench').description('benchmarks (each prints a table and writes JSON)');
  bench
    .command('fold')
    .description('fold throughput and peak RSS by chunk size, beside one single-pass forward where it fits')
    .option('--model <dir>', 'model folder (default: tiny-llama, built into a temporary folder)')
    .option('--tokens <list>', 'document lengths, e.g. 8k,32k', list('--tokens', parseTokenCount), [8192, 32768])
    .option('--chunk-sizes <list>', 'chunk sizes to fold with', list('--chunk-sizes', parseTokenCount), [64, 256, 1024])
    .option('--single-pass-limit-mib <n>', 'skip the single pass when its attention scores would exceed this', positiveInt('--single-pass-limit-mib'), 6144)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .option('--out <file>', 'JSON result file', 'bench-results/fold.json')
    .action(async (opts: BenchOptions) => runFoldBench(opts));

  bench
    .command('fold-one', { hidden: true })
    .requiredOption('--model <dir>')
    .requiredOption('--tokens <n>', '', (v) => parseTokenCount('--tokens', v))
    .requiredOption('--chunk-size <n>', '', positiveInt('--chunk-size'))
    .option('--threads <n>', '', positiveInt('--threads'))
    .action(async (opts: { model: string; tokens: number; chunkSize: number; threads?: number }) => {
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
  let modelDir = opts.model ? resolve(opts.model) : '';
  let scratch: string | null = null;
  if (!modelDir) {
    scratch = await mkdtemp(join(tmpdir(), 'kvfold-bench-'));
    modelDir = join(scratch, 'tiny-llama');
    await writeModelFolder(tinyLlamaSpec(), modelDir);
  }
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

/** Runs `bench fold-one` in a fresh process and parses its JSON line. */
function child(modelDir: string, tokens: number, chunkSize: number, threads?: number): Promise<FoldMeasurement> {
  const args = [...process.execArgv, process.argv[1] as string, 'bench', 'fold-one', '--model', modelDir, '--tokens', String(tokens), '--chunk-size', String(chunkSize)];
  if (threads) args.push('--threads', String(threads));
  return new Promise((resolvePromise, reject) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    p.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    p.on('error', reject);
    p.on('close', (code) => {
      if (code !== 0) reject(new CliError(`benchmark of ${tokens} tokens in chunks of ${chunkSize} exited with code ${code}`));
      else resolvePromise(JSON.parse(stdout.trim().split('\n').at(-1) as string) as FoldMeasurement);
    });
  });
}

const pad = (v: string | number, w: number) => String(v).padStart(w);
