/** `kvfold fold`: read a text, fold it through a model chunk by chunk, answer questions. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Device, LoadedModel } from '@kvfold/onnx';
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { addSettingOptions, checkpointCodec, policyChoice, type SettingFlags, samplingOf } from '../fold-options.ts';
import { positiveInt } from '../options.ts';
import { progressBar } from '../progress.ts';

interface FoldOptions extends Omit<SettingFlags, FoldOwnField> {
  nll?: boolean;
  json?: boolean;
  device: Device;
  threads?: number;
  beyondMaxPositions?: boolean;
  checkpoint?: string;
  fresh?: boolean;
  reuse?: boolean;
}

type FoldOwnField = 'maxTokensPerDocument' | 'keepFinal' | 'group';

export function registerFold(program: Command): void {
  const cmd = program
    .command('fold')
    .description('fold a document through a model chunk by chunk, then answer questions from the folded KV cache')
    .argument('<file>', 'text file to read, or - for standard input');
  addSettingOptions(cmd, 'fold', { flags: '--model <dir>', help: 'model folder (Hugging Face / optimum ONNX layout)' })
    .option('--nll', 'report the negative log-likelihood of every chunk')
    .option('--device <device>', 'execution provider: cpu, webgpu or cuda', parseDevice, 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .option('--beyond-max-positions', "fold past the model's max_position_embeddings instead of refusing")
    .option('--checkpoint <uri>', 'checkpoint the KV cache to this store (s3://bucket/prefix, file:///dir or a path) and resume from it')
    .option('--fresh', 'ignore a stored checkpoint made with other settings and start over')
    .option('--reuse', 'keep the final state in the checkpoint store, so later runs answer new questions without folding')
    .option('--json', 'print one JSON object (schema: docs/cli.md)');
  cmd.action(async (file: string, opts: FoldOptions) => {
    const t0 = performance.now();
    const choice = policyChoice(opts);
    checkpointCodec(opts); // refuses a codec that cannot store the cache before the model loads
    await samplingOf(opts); // refuses bad sampling flags before the model loads
    if ((opts.fresh || opts.reuse) && !opts.checkpoint) throw new CliError('--fresh and --reuse need --checkpoint <uri>');
    const text = await readInput(file);
    const [{ loadModel }, { KV_WIDTHS }] = await Promise.all([import('@kvfold/onnx'), import('@kvfold/fold-core')]);
    const model = await loadModel(opts.model, { device: opts.device, kvDtype: KV_WIDTHS[opts.kv], ...(opts.threads ? { threads: opts.threads } : {}) });
    try {
      await foldCommand(model, text, opts, choice, t0);
    } finally {
      await model.close();
    }
  });
}

async function foldCommand(model: LoadedModel, text: string, opts: FoldOptions, choice: ReturnType<typeof policyChoice>, t0: number) {
  const loadMs = performance.now() - t0;
  const [{ DocumentError, DocumentErrorCode, checkpointKey, jobSettings, prepareDocument, runJob }, { weightsOf }] = await Promise.all([import('@kvfold/runner'), import('@kvfold/onnx')]);
  const t1 = performance.now();
  const doc = (() => {
    try {
      return prepareDocument(model, text, { ...choice, queries: opts.ask, chatTemplate: opts.chat === true, maxNewTokens: opts.maxNewTokens, ...(opts.beyondMaxPositions ? { beyondMaxPositions: true } : {}) }, 'the document');
    } catch (err) {
      if (err instanceof DocumentError && err.code === DocumentErrorCode.TooLong) throw new DocumentError(err.code, `${err.message}; or pass --beyond-max-positions to fold anyway`);
      throw err;
    }
  })();
  const tokenizeMs = performance.now() - t1;
  for (const w of doc.warnings) process.stderr.write(`kvfold: warning: ${w}\n`);

  const steps = Math.ceil(doc.tokens.length / opts.chunkSize);
  const bar = progressBar(steps, 'folding');
  const checkpoint = opts.checkpoint ? await openCheckpointStore(opts.checkpoint) : undefined;
  const codec = checkpointCodec(opts);
  const outcome = await runJob({
    model: model.decoder,
    fingerprints: model.fingerprints,
    tokens: doc.tokens,
    questions: doc.questions,
    limits: doc.limits,
    settings: jobSettings(model, doc, { chunkSize: opts.chunkSize, nll: opts.nll === true, maxNewTokens: opts.maxNewTokens, maxBatchSize: opts.maxBatchSize, sampling: await samplingOf(opts), stop: opts.stop }),
    ...(checkpoint
      ? {
          checkpoint: {
            store: checkpoint,
            key: checkpointKey(sha256Hex(text), { model: model.folder.dir, chunkSize: opts.chunkSize, policy: choice.spec, kv: opts.kv, kvCodec: codec }),
            everySteps: opts.checkpointEvery,
            codec,
            onMismatch: 'refuse',
            keepFinal: opts.reuse === true,
            ...(opts.fresh ? { fresh: true } : {}),
          },
        }
      : {}),
    control: {
      onStep: (p) => bar.update(p.step, { tokens: p.tokens, rate: Math.round((p.tokens / (performance.now() - t1)) * 1000) }),
      onResume: (r) => {
        process.stderr.write(`kvfold: resuming from step ${r.step} of ${steps} (${r.tokens} tokens) stored in ${opts.checkpoint}\n`);
        for (const w of r.warnings) process.stderr.write(`kvfold: warning: ${w}\n`);
      },
      onCleanupFailed: (err) => process.stderr.write(`kvfold: warning: the answers are in, but the checkpoint in ${opts.checkpoint} could not be cleaned up: ${(err as Error).message}\n`),
    },
  });
  bar.stop();
  if (outcome.kind !== 'completed') throw new CliError(`the fold stopped at step ${outcome.step}`);
  const result = outcome.result;
  const out = {
    model: model.fingerprints.model,
    modelDir: model.folder.dir,
    weights: weightsOf(model.folder),
    plan: model.decoder.planSummary,
    tokenizer: model.fingerprints.tokenizer,
    device: opts.device,
    policy: doc.policyName,
    tokens: result.tokens,
    chunkSize: result.chunkSize,
    steps: result.steps,
    stepsRun: result.stepsRun,
    kvLength: result.kvLength,
    kvBytes: result.kvBytes,
    timings: {
      loadMs: round(loadMs),
      tokenizeMs: round(tokenizeMs),
      foldMs: round(result.timings.foldMs),
      generateMs: round(result.timings.generateMs),
      totalMs: round(performance.now() - t0),
      tokensPerSecond: round(result.timings.tokensPerSecond),
    },
    answers: result.answers,
    ...(result.nll ? { nll: result.nll } : {}),
    ...(checkpoint ? { resumedFromStep: result.resumedFromStep, checkpoint: { segments: result.checkpoint.segments, bytes: result.checkpoint.bytes } } : {}),
    warnings: doc.warnings,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const resumed = out.resumedFromStep ? `, resumed from step ${out.resumedFromStep}` : '';
  process.stdout.write(`model ${out.modelDir}: ${out.weights} weights; ${out.plan}\n`);
  process.stdout.write(
    `folded ${out.tokens} tokens in ${out.steps} steps of ${out.chunkSize}${resumed} (${out.timings.tokensPerSecond} tok/s); KV cache ${out.kvLength} rows, ${(out.kvBytes / 2 ** 20).toFixed(1)} MiB\n`,
  );
  if (result.nll) {
    const total = result.nll.reduce((a, c) => a + c.tokens, 0);
    const mean = result.nll.reduce((a, c) => a + c.nll * c.tokens, 0) / Math.max(1, total);
    process.stdout.write(`mean NLL ${mean.toFixed(4)} nats/token over ${result.nll.length} chunks\n`);
  }
  for (const a of result.answers) process.stdout.write(`Q: ${a.query}\nA: ${a.text}\n`);
}

/** The store `--checkpoint` names, checked before the fold starts. */
async function openCheckpointStore(uri: string) {
  const [{ storeOptionsFromEnv }, { checkStore, openStore }, { cliEnv }] = await Promise.all([import('@kvfold/jobs'), import('@kvfold/storage'), import('../env.ts')]);
  const store = openStore(uri, storeOptionsFromEnv(cliEnv()));
  await checkStore(store);
  return store;
}

function parseDevice(value: string): Device {
  if (value === 'cpu' || value === 'webgpu' || value === 'cuda') return value;
  throw new CliError(`--device must be cpu, webgpu or cuda, got "${value}"`);
}

async function readInput(file: string): Promise<string> {
  let text: string;
  if (file === '-') {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    text = Buffer.concat(chunks).toString('utf8');
  } else {
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; pass a readable text file or - for standard input`);
    }
  }
  if (text.trim() === '') throw new CliError(`input ${file === '-' ? '(standard input)' : file} is empty: there is nothing to fold`);
  return text;
}

const round = (x: number) => Math.round(x * 100) / 100;

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
