/**
 * `kvfold demo`: the main job end to end on the embedded default (filesystem store, in-process, no
 * servers), ending on an answer that can be checked. It builds the `recall` model (hand-set weights
 * that solve associative recall exactly), writes a long document of filler words with one needle
 * `KEY v1 .. vk` in it (deterministic: the same file every time), folds it with `kvfold run`'s code
 * path, asks `KEY`, and prints the question, the answer, the needle it must equal, tokens, steps and
 * peak memory. Run again, the document is already done and its stored answer is printed.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { positiveInt } from '../options.ts';
import { progressBar } from '../progress.ts';

/** The needle's values (n17 n3 ...) and where it sits: 30% into the document. */
const NEEDLE = [17, 3, 58, 41, 90, 26, 7, 64];
const DEPTH = 0.3;
const SEED = 7;
const QUESTION = 'KEY';

export interface DemoOptions {
  /** Document length in tokens, as folded (`<s>` included). */
  readonly tokens: number;
  readonly chunkSize: number;
  /** Folder for the model, the document, the store and results.jsonl. */
  readonly dir: string;
  readonly json?: boolean;
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('build the recall model, fold a long generated document with one needle in it, ask for the needle and check the answer (no servers)')
    .option('--tokens <n>', 'document length in tokens', positiveInt('--tokens'), 32_768)
    .option('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'), 1024)
    .option('--dir <dir>', 'folder for the model, the document, the store and results.jsonl', '.kvfold')
    .option('--json', 'print the outcome as JSON')
    .action(async (opts: DemoOptions) => {
      if (!(await demo(opts)).exact) process.exitCode = 1;
    });
}

async function demo(opts: DemoOptions): Promise<{ exact: boolean }> {
  const [{ recallLayout, recallSpec, recallTrial, writeModelFolder }, { runLocal, ModelCache }, { openStore }, { batchResultsKey }, { singlePassBytes }, { cliLogger }, { cliEnv }] = await Promise.all([
    import('@kvfold/model-zoo'),
    import('@kvfold/runner'),
    import('@kvfold/storage'),
    import('@kvfold/contract'),
    import('@kvfold/bench'),
    import('../logger.ts'),
    import('../env.ts'),
  ]);
  const dir = resolve(opts.dir);
  const layout = recallLayout();
  if (opts.tokens + 2 + NEEDLE.length + 1 > layout.maxPositions) throw new CliError(`--tokens ${opts.tokens}: the recall model reads at most ${layout.maxPositions} positions, question and answer included; ask for fewer tokens`);
  if (opts.tokens < 2 * (NEEDLE.length + 1)) throw new CliError(`--tokens ${opts.tokens}: too short for a ${NEEDLE.length}-value needle in a haystack; ask for at least ${2 * (NEEDLE.length + 1)}`);

  const spec = recallSpec();
  // The demo's own folder under its working store: rebuilt each run, whoever wrote it before.
  const model = await writeModelFolder(spec, join(dir, 'models', 'recall'), { replace: true });
  // The trial is `<s> haystack-with-needle KEY`; the document is what lies between, and the
  // tokenizer puts `<s>` back, so the fold reads exactly `tokens` tokens and the question is `KEY`.
  const trial = recallTrial(layout, { length: opts.tokens + 1, needle: NEEDLE, depth: DEPTH, seed: SEED });
  const words = trial.text.split(' ');
  const needle = words.slice(trial.keyPosition, trial.keyPosition + 1 + NEEDLE.length).join(' ');
  const expected = needle.slice(`${QUESTION} `.length);
  const document = join(dir, 'demo', `haystack-${opts.tokens}.txt`);
  await mkdir(join(dir, 'demo'), { recursive: true });
  await writeFile(document, `${words.slice(1, -1).join(' ')}\n`);

  const store = openStore(join(dir, 'store'));
  const models = new ModelCache({ cacheDir: join(dir, 'models-cache'), device: 'cpu' });
  let bar = progressBar(1, 'folding', false);
  let skipped = false;
  try {
    const run = await runLocal({
      inputs: [document],
      spec: { model: model.dir, queries: [QUESTION], chunkSize: opts.chunkSize, checkpointEvery: 8, maxNewTokens: NEEDLE.length + 1 },
      store,
      models,
      log: cliLogger(cliEnv().logLevelSet),
      onDocument: (d) => {
        skipped = d.skipped;
        bar = progressBar(1, 'folding');
      },
      onProgress: (p) => {
        bar.setTotal?.(p.totalSteps);
        bar.update(p.step, { tokens: p.tokens, rate: 0 });
      },
    });
    bar.stop();
    if (!run.results) throw new CliError(`the demo's fold of ${document} left no results (it was stopped); run it again to resume`);
    const lines = await store.getBytes(batchResultsKey(run.batchId));
    const out = join(dir, 'results.jsonl');
    await writeFile(out, lines);
    const result = JSON.parse(Buffer.from(lines).toString('utf8').trim().split('\n')[0] as string) as {
      status: string;
      tokens: number;
      steps: number;
      chunkSize: number;
      kvBytes: number;
      timings: { foldMs: number; tokensPerSecond: number };
      answers: { text: string }[];
      error?: { message: string };
    };
    if (result.status !== 'completed') throw new CliError(`the demo's fold of ${document} failed: ${result.error?.message ?? 'no reason given'}`);
    const answer = result.answers[0]?.text ?? '';
    const exact = answer === expected;
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    const { config } = spec;
    const singlePass = singlePassBytes(
      { layers: config.num_hidden_layers, kvHeads: config.num_key_value_heads, headDim: config.head_dim, dtype: 'float32', maxPositions: layout.maxPositions, vocabSize: layout.vocabSize, heads: config.num_attention_heads, hidden: config.hidden_size },
      result.tokens,
    ).total;
    const outcome = {
      document: relative(process.cwd(), document) || document,
      needle,
      depth: DEPTH,
      question: QUESTION,
      answer,
      expected,
      exact,
      tokens: result.tokens,
      steps: result.steps,
      chunkSize: result.chunkSize,
      foldMs: Math.round(result.timings.foldMs),
      tokensPerSecond: result.timings.tokensPerSecond,
      kvBytes: result.kvBytes,
      peakRssBytes,
      singlePassBytes: singlePass,
      foldedNow: !skipped,
      results: relative(process.cwd(), out) || out,
    };
    if (opts.json) process.stdout.write(`${JSON.stringify(outcome)}\n`);
    else process.stdout.write(demoText(outcome));
    return { exact };
  } finally {
    bar.stop();
    await models.close();
  }
}

/** What `kvfold demo --json` prints: the document, the question, the answer and the fold's figures. */
export interface DemoOutcome {
  document: string;
  needle: string;
  depth: number;
  question: string;
  answer: string;
  expected: string;
  exact: boolean;
  tokens: number;
  steps: number;
  chunkSize: number;
  foldMs: number;
  tokensPerSecond: number;
  kvBytes: number;
  peakRssBytes: number;
  singlePassBytes: number;
  foldedNow: boolean;
  results: string;
}

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const count = (n: number) => n.toLocaleString('en-US');

function demoText(o: DemoOutcome): string {
  return [
    `document  ${o.document}: ${count(o.tokens)} tokens of filler words, one needle "${o.needle}" ${Math.round(o.depth * 100)}% of the way in`,
    `asked     ${o.question}`,
    `answered  ${o.answer}`,
    `expected  ${o.expected}  ${o.exact ? '(exact match)' : '(WRONG: the fold did not retrieve the needle)'}`,
    `folded    ${count(o.tokens)} tokens in ${o.steps} steps of ${o.chunkSize} in ${(o.foldMs / 1000).toFixed(1)} s (${Math.round(o.tokensPerSecond)} tokens/s)${o.foldedNow ? '' : ', on an earlier run: nothing folded now'}`,
    `memory    peak RSS ${gib(o.peakRssBytes)} this run; KV cache ${mib(o.kvBytes)}; one single forward pass over these tokens would need about ${gib(o.singlePassBytes)}`,
    `results   ${o.results}`,
    '',
  ].join('\n');
}
