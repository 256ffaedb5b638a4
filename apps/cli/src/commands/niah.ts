/** `kvfold niah`: needle-in-a-haystack exact match over lengths x depths x chunk sizes. */
import type { KvWidth, PolicySpec } from '@kvfold/fold-core';
import type { Device } from '@kvfold/onnx';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { NiahGrid, NiahRun } from '@kvfold/bench';
import { type Command, InvalidArgumentError } from 'commander';
import { CliError } from '../cli-error.ts';
import { list, nonNegativeInt, parseTokenCount, positiveInt } from '../options.ts';
import { progressBar } from '../progress.ts';

interface NiahOptions {
  model: string;
  lengths: number[];
  depths: number[];
  chunkSizes: number[];
  policy: 'full' | 'streaming';
  sink: number;
  window?: number;
  kv: KvWidth;
  trials: number;
  seed: number;
  needlesPerHaystack: number;
  needleSize?: number;
  protocol: 'auto' | 'recall' | 'text';
  chat?: boolean;
  maxNewTokens?: number;
  device: Device;
  threads?: number;
  out: string;
  json?: boolean;
}

/** Progress lines per fold written to a log when stderr is not a terminal. */
const LOG_LINES_PER_FOLD = 10;

/** StreamingLLM's usual number of attention-sink tokens. */
const DEFAULT_SINK = 4;

export function registerNiah(program: Command): void {
  registerNiahReport(program);
  program
    .command('niah')
    .description('needle-in-a-haystack: fold haystacks with hidden needles, ask for each needle, report exact match by length x depth')
    .requiredOption('--model <dir>', 'model folder (Hugging Face / optimum ONNX layout)')
    .option('--lengths <list>', 'context lengths (document + question + answer), e.g. 16k,32k,64k,128k', list('--lengths', parseTokenCount), [16384])
    .option('--depths <list>', 'needle depths in [0, 1]', list('--depths', parseDepth), [0, 0.25, 0.5, 0.75, 1])
    .option('--chunk-sizes <list>', 'tokens per fold step', list('--chunk-sizes', parseTokenCount), [256])
    .option('--policy <policy>', 'KV policy: full or streaming', parseChoice('--policy', ['full', 'streaming'] as const), 'full')
    .option('--sink <n>', 'streaming: attention-sink tokens kept', nonNegativeInt('--sink'), DEFAULT_SINK)
    .option('--window <n>', 'streaming: most recent tokens kept', (v) => parseTokenCount('--window', v))
    .option('--kv <width>', 'width the cache is held at: f32, f16 or int8', parseChoice('--kv', ['f32', 'f16', 'int8'] as const), 'f32')
    .option('--trials <n>', 'trials per (length, depth, chunk size) cell', positiveInt('--trials'), 1)
    .option('--seed <n>', 'seed of haystacks and needles', nonNegativeInt('--seed'), 0)
    .option('--needles-per-haystack <n>', 'needles per haystack, each asked from the same folded state (1 = the paper’s protocol)', positiveInt('--needles-per-haystack'), 1)
    .option('--needle-size <n>', 'values per recall needle (default 4), or digits of a text needle (default 7)', positiveInt('--needle-size'))
    .option('--protocol <name>', 'auto (recall when the vocabulary has it, else text), recall or text', parseChoice('--protocol', ['auto', 'recall', 'text'] as const), 'auto')
    .option('--chat', "text protocol: ask in the model's chat template")
    .option('--max-new-tokens <n>', 'text protocol: tokens generated per answer (default 24)', positiveInt('--max-new-tokens'))
    .option('--device <device>', 'execution provider: cpu, webgpu or cuda', parseChoice('--device', ['cpu', 'webgpu', 'cuda'] as const), 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .requiredOption('--out <dir>', 'folder for results.jsonl, report.md and the heatmaps')
    .option('--json', 'print a JSON summary instead of the table')
    .action(async (opts: NiahOptions) => {
      const [{ loadModel }, { checkGrid, niahModel, openResults, prepareNiah, runNiah, summaryText, writeReport }] = await Promise.all([import('@kvfold/onnx'), import('@kvfold/bench')]);
      const policy: PolicySpec = opts.policy === 'streaming' ? { kind: 'streaming', sink: opts.sink, window: opts.window ?? 0 } : { kind: 'full' };
      if (opts.policy !== 'streaming' && opts.window !== undefined) throw new CliError('--window applies to --policy streaming only');
      const grid: NiahGrid = {
        lengths: opts.lengths,
        depths: opts.depths,
        chunkSizes: opts.chunkSizes,
        policy,
        kv: opts.kv,
        trials: opts.trials,
        seed: opts.seed,
        needlesPerHaystack: opts.needlesPerHaystack,
        protocol: opts.protocol,
        ...(opts.needleSize !== undefined ? { needleSize: opts.needleSize } : {}),
        ...(opts.chat ? { chat: true } : {}),
        ...(opts.maxNewTokens !== undefined ? { maxNewTokens: opts.maxNewTokens } : {}),
      };
      checkGrid(grid);
      const { KV_WIDTHS } = await import('@kvfold/fold-core');
      const loaded = await loadModel(opts.model, { device: opts.device, kvDtype: KV_WIDTHS[opts.kv], ...(opts.threads ? { threads: opts.threads } : {}) });
      try {
        const model = niahModel(loaded);
        const { protocol, plan } = prepareNiah(model, grid);
        const results = await openResults(opts.out);
        const started = performance.now();
        const command = `kvfold ${process.argv.slice(2).join(' ')}`;
        const report = (trials: NiahRun['trials']) =>
          writeReport(opts.out, { grid, trials, modelDir: loaded.folder.dir, modelFingerprint: loaded.fingerprints.model, protocol: protocol.name, command });
        const sofar: NiahRun['trials'] = [];
        let bar = progressBar(1, 'folding');
        let label = '';
        const run = await runNiah(model, grid, {
          onFold: ({ haystack, chunkSize, done, total }) => {
            bar.stop();
            label = `fold ${done + 1}/${total} (${haystack.length} tokens, chunk ${chunkSize})`;
            bar = progressBar(Math.ceil(haystack.documentTokens / chunkSize), label);
          },
          onStep: ({ step, totalSteps }) => {
            bar.update(step, { tokens: 0, rate: 0 });
            // Off a terminal (a background run's log), a line every tenth of a fold.
            if (!process.stderr.isTTY && (step === totalSteps || step % Math.ceil(totalSteps / LOG_LINES_PER_FOLD) === 0)) {
              process.stderr.write(`${new Date().toISOString()} ${label}: step ${step}/${totalSteps}\n`);
            }
          },
          // The report is rewritten after every trial, so a run cut short still leaves one.
          onTrial: async (t) => {
            sofar.push(t);
            await results.append(t);
            await report(sofar);
          },
        });
        bar.stop();
        const seconds = (performance.now() - started) / 1000;
        const files = await report(run.trials);
        const exact = run.trials.filter((t) => t.exact).length;
        if (opts.json) {
          process.stdout.write(
            `${JSON.stringify({ protocol: protocol.name, haystacks: plan.length, trials: run.trials.length, exact, exactMatch: exact / run.trials.length, seconds, files: [results.path, ...files] })}\n`,
          );
          return;
        }
        process.stdout.write(`${summaryText(run.trials)}${run.trials.length} trials in ${seconds.toFixed(1)} s; wrote ${results.path}, ${files.join(', ')}\n`);
      } finally {
        await loaded.close();
      }
    });
}

/** `kvfold niah-report`: one report from the results.jsonl of runs of one configuration (e.g. split by length). */
function registerNiahReport(program: Command): void {
  program
    .command('niah-report')
    .description('write report.md and heatmaps from the results.jsonl of one or more kvfold niah runs of the same configuration')
    .requiredOption('--results <files...>', 'results.jsonl files to merge')
    .requiredOption('--out <dir>', 'folder for the merged results.jsonl, report.md and heatmaps')
    .option('--model <dir>', 'model folder to name in the report', '(see the runs)')
    .action(async (opts: { results: string[]; out: string; model: string }) => {
      const { gridOfTrials, readResults, RESULTS_FILE, summaryText, writeReport } = await import('@kvfold/bench');
      const trials = await readResults(opts.results);
      const grid = gridOfTrials(trials);
      const merged = join(resolve(opts.out), RESULTS_FILE);
      const files = await writeReport(opts.out, { grid, trials, modelDir: opts.model, protocol: grid.protocol, command: `kvfold ${process.argv.slice(2).join(' ')}` });
      if (!opts.results.map((p) => resolve(p)).includes(merged)) await writeFile(merged, trials.map((t) => `${JSON.stringify(t)}\n`).join(''));
      process.stdout.write(`${summaryText(trials)}wrote ${merged}, ${files.join(', ')}\n`);
    });
}

function parseDepth(name: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name}: "${value}" is not a number (depths are fractions in [0, 1]).`);
  return n;
}

function parseChoice<T extends string>(name: string, choices: readonly T[]) {
  return (value: string): T => {
    if ((choices as readonly string[]).includes(value)) return value as T;
    throw new InvalidArgumentError(`${name} must be one of ${choices.join(', ')}, got "${value}".`);
  };
}
