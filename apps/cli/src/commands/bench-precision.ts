/**
 * `kvfold bench precision`: a random Llama-shaped BF16 checkpoint imported at each weight width,
 * each folder's fold and decode measured in a fresh process, and its fidelity against float32.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { Fidelity, FidelityOptions, PrecisionRun, PrecisionRunOptions, PrecisionShape } from '@kvfold/bench';
import type { ImportDtype } from '@kvfold/model-zoo';
import type { KvWidth } from '@kvfold/fold-core';
import { type Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import { list, parseTokenCount, positiveInt } from '../options.ts';
import { kvfoldChild } from './bench-child.ts';
import { WEIGHT_DTYPES } from './models.ts';

interface PrecisionFlags {
  shape: string;
  dtypes: string[];
  tokens: number;
  chunkSize: number;
  decode: number;
  threads: number;
  kv: KvWidth;
  fidelityTokens: number;
  dir?: string;
  out: string;
}

const SHAPES = ['123m', '1b', '8b'] as const;

export function registerPrecisionBench(bench: Command): void {
  bench
    .command('precision')
    .description('weights at f32, f16, int8 and int4 on one random Llama-shaped checkpoint: folder size, prefill and decode tokens/s, peak RSS, fidelity against f32')
    .option('--shape <shape>', `checkpoint shape: ${SHAPES.join(', ')} (123m: hidden 1024, 8 layers; 1b: Llama-3.2-1B; 8b: Llama-3.1-8B, a 16 GB checkpoint)`, '123m')
    .option('--dtypes <list>', 'weight widths to import and measure', list('--dtypes', (_flag, v) => v), ['f32', 'int8', 'int4'])
    .option('--tokens <n>', 'tokens folded in each measured run', (v) => parseTokenCount('--tokens', v), 12288)
    .option('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'), 256)
    .option('--decode <n>', 'tokens generated after the fold', positiveInt('--decode'), 64)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'), availableParallelism())
    .addOption(new Option('--kv <width>', 'width the measured folds hold their cache at').choices(['f32', 'f16', 'int8']).default('f32'))
    .option('--fidelity-tokens <n>', 'prompt tokens of the comparison with f32 (f32 then continues for 64)', (v) => parseTokenCount('--fidelity-tokens', v), 512)
    .option('--dir <dir>', 'where the checkpoint and folders are written and kept, and reused when already complete (default: a temporary folder, removed)')
    .option('--out <file>', 'JSON result file', 'bench-results/precision.json')
    .action(async (o: PrecisionFlags) => runPrecision(o));

  bench
    .command('precision-run', { hidden: true })
    .requiredOption('--model <dir>')
    .requiredOption('--tokens <n>', '', (v) => parseTokenCount('--tokens', v))
    .requiredOption('--chunk-size <n>', '', positiveInt('--chunk-size'))
    .requiredOption('--decode <n>', '', positiveInt('--decode'))
    .requiredOption('--threads <n>', '', positiveInt('--threads'))
    .requiredOption('--kv <width>')
    .action(async (o: { model: string; tokens: number; chunkSize: number; decode: number; threads: number; kv: KvWidth }) => {
      const { measurePrecisionRun } = await import('@kvfold/bench');
      const r = await measurePrecisionRun({ modelDir: o.model, tokens: o.tokens, chunkSize: o.chunkSize, decode: o.decode, threads: o.threads, kv: o.kv });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    });

  bench
    .command('precision-fidelity', { hidden: true })
    .requiredOption('--reference <dir>')
    .requiredOption('--model <dir>')
    .requiredOption('--tokens <n>', '', (v) => parseTokenCount('--tokens', v))
    .requiredOption('--continuation <n>', '', positiveInt('--continuation'))
    .requiredOption('--chunk-size <n>', '', positiveInt('--chunk-size'))
    .requiredOption('--threads <n>', '', positiveInt('--threads'))
    .action(async (o: { reference: string; model: string; tokens: number; continuation: number; chunkSize: number; threads: number }) => {
      const { measureFidelity } = await import('@kvfold/bench');
      const r = await measureFidelity({ referenceDir: o.reference, modelDir: o.model, tokens: o.tokens, continuation: o.continuation, chunkSize: o.chunkSize, threads: o.threads });
      process.stdout.write(`${JSON.stringify(r)}\n`);
    });
}

async function runPrecision(o: PrecisionFlags): Promise<void> {
  if (!(SHAPES as readonly string[]).includes(o.shape)) throw new CliError(`--shape must be one of ${SHAPES.join(', ')}, got "${o.shape}"`);
  const bad = o.dtypes.filter((d) => !(WEIGHT_DTYPES as readonly string[]).includes(d));
  if (bad.length) throw new CliError(`--dtypes: ${bad.join(', ')} is not a weight width; use ${WEIGHT_DTYPES.join(', ')}`);
  const { runPrecisionBench } = await import('@kvfold/bench');
  const scratch = o.dir ? null : await mkdtemp(join(tmpdir(), 'kvfold-bench-precision-'));
  const dir = o.dir ? resolve(o.dir) : (scratch as string);
  await mkdir(dir, { recursive: true });
  try {
    process.stdout.write(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; ${o.threads} threads; ${o.tokens} tokens in chunks of ${o.chunkSize}, then ${o.decode} decoded; ${o.kv} cache\n`);
    const report = await runPrecisionBench({
      shape: o.shape as PrecisionShape,
      dtypes: o.dtypes as ImportDtype[],
      tokens: o.tokens,
      chunkSize: o.chunkSize,
      decode: o.decode,
      threads: o.threads,
      kv: o.kv,
      fidelityTokens: o.fidelityTokens,
      dir,
      runChild: (r: PrecisionRunOptions) =>
        kvfoldChild<PrecisionRun>(
          ['bench', 'precision-run', '--model', r.modelDir, '--tokens', String(r.tokens), '--chunk-size', String(r.chunkSize), '--decode', String(r.decode), '--threads', String(r.threads), '--kv', r.kv ?? 'f32'],
          `the fold of ${r.modelDir}`,
        ),
      fidelityChild: (f: FidelityOptions) =>
        kvfoldChild<Fidelity>(
          ['bench', 'precision-fidelity', '--reference', f.referenceDir, '--model', f.modelDir, '--tokens', String(f.tokens), '--continuation', String(f.continuation), '--chunk-size', String(f.chunkSize), '--threads', String(f.threads)],
          `the comparison of ${f.modelDir} with ${f.referenceDir}`,
        ),
      log: (line) => process.stdout.write(`${line}\n`),
    });
    const out = resolve(o.out);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify({ benchmark: 'precision', date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: availableParallelism(), ...report }, null, 2)}\n`);
    process.stdout.write(`wrote ${out}\n`);
    if (report.bars.some((b) => !b.pass)) process.exitCode = 1;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
