/** `kvfold run`: fold a whole corpus locally — filesystem store, in-process, no servers. */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { Device } from '@kvfold/onnx';
import { type Command, Option } from 'commander';
import { addSettingOptions, type SettingFlags, settingsFromFlags } from '../fold-options.ts';
import { positiveInt } from '../options.ts';
import { progressBar } from '../progress.ts';

/** Where `kvfold run` keeps its store (corpus shards, checkpoints, results) by default. */
export const DEFAULT_LOCAL_STORE = '.kvfold/store';

interface RunOptions extends SettingFlags {
  out?: string;
  store: string;
  keepFailures?: boolean;
  device: Device;
  threads?: number;
  concurrency: number;
  json?: boolean;
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('fold every document of a corpus in this process (filesystem store, no Redis or S3); rerun to resume and retry failed documents')
    .argument('<corpus...>', 'files, directories (.gitignore honoured), .tar, .tar.gz/.tgz, .zip or .jsonl');
  addSettingOptions(cmd, 'run', { flags: '--model <dir|uri>', help: 'model folder, or a store URI holding one' })
    .option('--out <file>', 'write the results, one JSON line per document')
    .option('--store <uri>', 'object store for shards, checkpoints and results', DEFAULT_LOCAL_STORE)
    .option('--keep-failures', 'on a rerun, keep the stored results of failed documents instead of folding them again')
    .addOption(new Option('--device <device>', 'execution provider').choices(['cpu', 'webgpu', 'cuda']).default('cpu'))
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .option('--concurrency <n>', 'documents folded at once; their steps share session runs, up to --max-batch-size documents a run', positiveInt('--concurrency'), 1)
    .option('--json', 'print a JSON summary');
  cmd.action(async (corpus: string[], opts: RunOptions) => {
    const settings = await settingsFromFlags(opts, opts.model.includes('://') ? opts.model : resolve(opts.model));
    const [{ batchResultsKey }, { storeOptionsFromEnv }, { ProducerErrorCode, summarizeReport, summaryLine }, { ModelCache, runLocal }, { checkStore, openStore }, { cliEnv }, { cliLogger }] = await Promise.all([
      import('@kvfold/contract'),
      import('@kvfold/jobs'),
      import('@kvfold/producer'),
      import('@kvfold/runner'),
      import('@kvfold/storage'),
      import('../env.ts'),
      import('../logger.ts'),
    ]);
    const env = cliEnv();
    const log = cliLogger(env.logLevelSet ? env.LOG_LEVEL : undefined);
    const store = openStore(opts.store, storeOptionsFromEnv(env));
    await checkStore(store);
    // The documents folded at once (--concurrency) share the model's session runs, up to --max-batch-size a run.
    const models = new ModelCache({
      cacheDir: env.KVFOLD_MODEL_CACHE ?? resolve('.kvfold/models-cache'),
      storeOptions: storeOptionsFromEnv(env),
      device: opts.device,
      slots: Math.min(opts.concurrency, settings.maxBatchSize ?? opts.concurrency),
      ...(opts.threads ? { threads: opts.threads } : {}),
    });
    let stopRequested = false;
    const stop = () => {
      if (!stopRequested) process.stderr.write('kvfold: stopping after the current step (checkpoint kept); run again to resume\n');
      stopRequested = true;
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    let bar = progressBar(1, 'document', false);
    // Several documents fold at once: the bar follows the one started last.
    let shown = -1;
    try {
      const result = await runLocal({
        inputs: corpus,
        spec: settings,
        store,
        models,
        log,
        shouldStop: () => stopRequested,
        concurrency: opts.concurrency,
        keepFailures: opts.keepFailures === true,
        onDocument: (d) => {
          bar.stop();
          const note = d.earlier === 'failed' ? (d.skipped ? ' (failed earlier, kept)' : ' (failed earlier, trying again)') : d.skipped ? ' (done earlier)' : '';
          if (!opts.json) process.stderr.write(`[${d.index + 1}/${d.total}] ${d.paths.join(', ')}${note}\n`);
          if (d.skipped) return;
          shown = d.index;
          bar = progressBar(1, 'folding');
        },
        onProgress: (p) => {
          if (p.index !== shown) return;
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
        retried: result.retried,
        /** Documents whose checkpoint could not be deleted after their result was stored. */
        cleanupWarnings: result.cleanupWarnings,
        stopped: result.stopped,
        skippedFiles: result.report?.skipped ?? [],
        refusedEntries: result.report?.refused ?? [],
        results: result.results ? `${store.uri.replace(/\/+$/, '')}/${batchResultsKey(result.batchId)}` : null,
        out: opts.out ? resolve(opts.out) : null,
      };
      if (opts.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
      else {
        process.stdout.write(
          `batch ${summary.batchId}: ${summary.documents} documents: ${summary.completed} completed, ${summary.failed} failed (${summary.foldedNow} folded and ${summary.failedNow} failed now, ${summary.retried} of them retried, ${summary.skipped} done earlier)${summary.stopped ? ' — stopped early, run again to resume' : ''}\n`,
        );
        // One line per reason, with a count and the first names; --json lists every entry.
        for (const line of summarizeReport({ skipped: summary.skippedFiles, refused: summary.refusedEntries })) process.stdout.write(`${summaryLine(line)}\n`);
        if (summary.results) process.stdout.write(`results: ${summary.out ?? summary.results}\n`);
      }
      if (summary.cleanupWarnings > 0) {
        process.stderr.write(`kvfold: ${summary.cleanupWarnings} documents folded, but their checkpoints could not be deleted from ${store.uri} (see the warnings above); their results are stored\n`);
      }
      // Whole documents refused as too long or too large were given and not folded: the run did not do all it was asked.
      const tooBig = summary.refusedEntries.filter((r) => r.code === ProducerErrorCode.DocumentTooLong || r.code === ProducerErrorCode.DocumentTooLarge).length;
      if (result.stopped) process.exitCode = 130;
      else if (summary.failed > 0 || tooBig > 0) {
        const hint = opts.keepFailures ? 'run again without --keep-failures to retry them' : 'fix the cause and run again to retry them';
        if (summary.failed > 0) process.stderr.write(`kvfold: ${summary.failed} of ${summary.documents} documents failed (errors in ${summary.out ?? summary.results}); ${hint}\n`);
        if (tooBig > 0) process.stderr.write(`kvfold: ${tooBig} documents were refused before folding as over the token limit or the size cap (listed above); split them (--group auto) or raise --max-tokens-per-document\n`);
        process.exitCode = 1;
      }
    } finally {
      bar.stop();
      await models.close();
    }
  });
}
