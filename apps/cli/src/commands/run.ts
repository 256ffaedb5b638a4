/** `kvfold run`: fold a whole corpus locally — filesystem store, in-process, no servers. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { batchResultsKey, storeOptionsFromEnv } from '@kvfold/jobs';
import type { Device } from '@kvfold/onnx';
import { summarizeReport, summaryLine } from '@kvfold/producer';
import { ModelCache, runLocal } from '@kvfold/runner';
import { checkStore, openStore } from '@kvfold/storage';
import { type Command, Option } from 'commander';
import { cliEnv } from '../env.ts';
import { addPolicyOptions, type PolicyFlags, parseCodec, policyChoice } from '../fold-options.ts';
import { cliLogger } from '../logger.ts';
import { collect, positiveInt } from '../options.ts';
import { progressBar } from '../progress.ts';

/** Where `kvfold run` keeps its store (corpus shards, checkpoints, results) by default. */
export const DEFAULT_LOCAL_STORE = '.kvfold/store';

interface RunOptions extends PolicyFlags {
  model: string;
  ask: string[];
  out?: string;
  store: string;
  chunkSize: number;
  checkpointEvery: number;
  kvCodec: 'f32' | 'f16' | 'int8';
  maxNewTokens: number;
  maxTokensPerDocument?: number;
  group: 'file' | 'directory' | 'auto';
  chat?: boolean;
  keepFinal?: boolean;
  device: Device;
  threads?: number;
  json?: boolean;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('fold every document of a corpus in this process (filesystem store, no Redis or S3); rerun to resume')
    .argument('<corpus...>', 'files, directories (.gitignore honoured), .tar, .tar.gz/.tgz, .zip or .jsonl')
    .requiredOption('--model <dir>', 'model folder, or a store URI holding one')
    .option('--ask <text>', 'a question to answer for every document (repeatable)', collect, [])
    .option('--out <file>', 'write the results, one JSON line per document')
    .option('--store <uri>', 'object store for shards, checkpoints and results', DEFAULT_LOCAL_STORE)
    .option('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'), 256)
    .option('--checkpoint-every <n>', 'steps between checkpoints', positiveInt('--checkpoint-every'), 8)
    .option('--kv-codec <codec>', 'checkpoint codec: f32, f16 or int8', parseCodec, 'f32')
    .option('--max-new-tokens <n>', 'tokens to generate per answer', positiveInt('--max-new-tokens'), 32)
    .option('--max-tokens-per-document <n>', 'documents longer than this fail alone', positiveInt('--max-tokens-per-document'))
    .addOption(
      new Option('--group <grouping>', 'file: one document per file; directory: one per top-level directory; auto: documents that fit --max-tokens-per-document, a directory together where it fits (best for codebases)')
        .choices(['file', 'directory', 'auto'])
        .default('file'),
    )
    .option('--chat', "wrap each question in the model's chat template")
    .option('--keep-final', 'keep each final KV state for later questions (fold once, ask many)')
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'webgpu', 'cuda']).default('cpu'))
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .option('--json', 'print a JSON summary');
  addPolicyOptions(cmd).action(async (corpus: string[], opts: RunOptions) => {
    const choice = policyChoice(opts);
    const env = cliEnv();
    const log = cliLogger(process.env.LOG_LEVEL ? env.LOG_LEVEL : undefined);
    const store = openStore(opts.store, storeOptionsFromEnv(env));
    await checkStore(store);
    const models = new ModelCache({ cacheDir: env.KVFOLD_MODEL_CACHE ?? resolve('.kvfold/models-cache'), storeOptions: storeOptionsFromEnv(env), device: opts.device, ...(opts.threads ? { threads: opts.threads } : {}) });
    let stopRequested = false;
    const stop = () => {
      if (!stopRequested) process.stderr.write('kvfold: stopping after the current step (checkpoint kept); run again to resume\n');
      stopRequested = true;
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let bar = progressBar(1, 'document', false);
    try {
      const result = await runLocal({
        inputs: corpus,
        spec: {
          model: opts.model.includes('://') ? opts.model : resolve(opts.model),
          queries: opts.ask,
          chunkSize: opts.chunkSize,
          checkpointEvery: opts.checkpointEvery,
          kvCodec: opts.kvCodec,
          policy: choice.spec,
          maxNewTokens: opts.maxNewTokens,
          ...(opts.maxTokensPerDocument ? { maxTokensPerDocument: opts.maxTokensPerDocument } : {}),
          grouping: opts.group,
          chatTemplate: opts.chat === true,
          keepFinalState: opts.keepFinal === true,
        },
        store,
        models,
        log,
        shouldStop: () => stopRequested,
        onDocument: (d) => {
          bar.stop();
          if (!opts.json) process.stderr.write(`[${d.index + 1}/${d.total}] ${d.paths.join(', ')}${d.skipped ? ' (done earlier)' : ''}\n`);
          bar = progressBar(1, 'folding');
        },
        onProgress: (p) => {
          bar.setTotal?.(p.totalSteps);
          bar.update(p.step, { tokens: p.tokens, rate: 0 });
        },
      });
      bar.stop();
      if (result.results && opts.out) {
        const out = resolve(opts.out);
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, await store.getBytes(batchResultsKey(result.batchId)));
      }
      const summary = {
        batchId: result.batchId,
        documents: result.documents,
        /** Totals over the batch's results (this run and earlier ones). */
        completed: result.results?.completed ?? result.completed,
        failed: result.results?.failed ?? result.failed,
        /** What this run did. */
        foldedNow: result.completed,
        failedNow: result.failed,
        skipped: result.skipped,
        stopped: result.stopped,
        skippedFiles: result.report?.skipped ?? [],
        refusedEntries: result.report?.refused ?? [],
        results: result.results ? `${store.uri.replace(/\/+$/, '')}/${batchResultsKey(result.batchId)}` : null,
        out: opts.out ? resolve(opts.out) : null,
      };
      if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        process.stdout.write(
          `batch ${summary.batchId}: ${summary.documents} documents: ${summary.completed} completed, ${summary.failed} failed (${summary.foldedNow} folded and ${summary.failedNow} failed now, ${summary.skipped} done earlier)${summary.stopped ? ' — stopped early, run again to resume' : ''}\n`,
        );
        // One line per reason, with a count and the first names; --json lists every entry.
        for (const line of summarizeReport({ skipped: summary.skippedFiles, refused: summary.refusedEntries })) process.stdout.write(`${summaryLine(line)}\n`);
        if (summary.results) process.stdout.write(`results: ${summary.out ?? summary.results}\n`);
      }
      if (result.stopped) process.exitCode = 130;
    } finally {
      bar.stop();
      await models.close();
    }
  });
}
