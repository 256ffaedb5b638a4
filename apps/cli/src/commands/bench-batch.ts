/**
 * `kvfold bench batch`: the questions of one folded document answered one at a time through the
 * standard step graph, one at a time as packed steps, and decoded together; generated tokens/s of
 * each, the speedup, and whether the three gave the same answers.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { KvWidth } from '@kvfold/fold-core';
import { type Command, Option } from 'commander';
import { list, parseTokenCount, positiveInt } from '../options.ts';

interface BatchFlags {
  model?: string;
  tokens: number;
  chunkSize: number;
  questions: number[];
  promptTokens: number;
  newTokens: number;
  threads?: number;
  kv: KvWidth;
  out: string;
}

export function registerBatchBench(bench: Command): void {
  bench
    .command('batch')
    .description("questions of one folded document: one at a time (standard steps, then packed) against decoded together; tokens/s and the answers compared")
    .option('--model <dir>', "model folder (default: kv-heavy, Llama-3.1-8B's cache geometry, built into a temporary folder)")
    .option('--tokens <n>', 'tokens of the folded document', (v) => parseTokenCount('--tokens', v), 6144)
    .option('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'), 512)
    .option('--questions <list>', 'question counts to measure', list('--questions', (flag, v) => positiveInt(flag)(v)), [1, 4, 8, 16])
    .option('--prompt-tokens <n>', 'tokens of each question', positiveInt('--prompt-tokens'), 8)
    .option('--new-tokens <n>', 'tokens generated for each question', positiveInt('--new-tokens'), 16)
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .addOption(new Option('--kv <width>', 'width the cache is held at').choices(['f32', 'f16', 'int8']).default('f32'))
    .option('--out <file>', 'JSON result file', 'bench-results/batch.json')
    .action(async (o: BatchFlags) => runBatchBench(o));
}

async function runBatchBench(o: BatchFlags): Promise<void> {
  const [{ measureBatch }, { kvHeavySpec, writeModelFolder }] = await Promise.all([import('@kvfold/bench'), import('@kvfold/model-zoo')]);
  const scratch = o.model ? null : await mkdtemp(join(tmpdir(), 'kvfold-bench-batch-'));
  try {
    const modelDir = o.model ? resolve(o.model) : join(scratch as string, 'kv-heavy');
    if (!o.model) await writeModelFolder(kvHeavySpec(), modelDir);
    const threads = o.threads ?? availableParallelism();
    process.stdout.write(
      `machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; ${threads} threads; ${o.tokens} tokens folded, questions of ${o.promptTokens} tokens, ${o.newTokens} generated each; ${o.kv} cache\n`,
    );
    const report = await measureBatch({
      modelDir,
      tokens: o.tokens,
      chunkSize: o.chunkSize,
      questions: o.questions,
      promptTokens: o.promptTokens,
      newTokens: o.newTokens,
      threads,
      kv: o.kv,
      log: (line) => process.stdout.write(`${line}\n`),
    });
    const out = resolve(o.out);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify({ benchmark: 'batch', date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: availableParallelism(), threads, ...report }, null, 2)}\n`);
    process.stdout.write(`wrote ${out}\n`);
    if (report.rows.some((r) => !r.sameAnswers)) {
      process.stderr.write('the answers differ between the ways of answering: packed steps are not exact here\n');
      process.exitCode = 1;
    }
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}
