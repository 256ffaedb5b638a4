/** `kvfold fold`: read a text, fold it through a model chunk by chunk, answer questions. */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import type { Device, LoadedModel } from '@kvfold/onnx';
import type { FoldDocumentResult, Query, ResumableFoldResult } from '@kvfold/runner';
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { addSettingOptions, policyChoice, type SettingFlags, samplingOf } from '../fold-options.ts';
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
    await samplingOf(opts); // refuses bad sampling flags before the model loads
    if ((opts.fresh || opts.reuse) && !opts.checkpoint) throw new CliError('--fresh and --reuse need --checkpoint <uri>');
    const text = await readInput(file);
    const { loadModel } = await import('@kvfold/onnx');
    const model = await loadModel(opts.model, { device: opts.device, ...(opts.threads ? { threads: opts.threads } : {}) });
    try {
      await foldCommand(model, text, opts, choice, t0);
    } finally {
      await model.close();
    }
  });
}

async function foldCommand(model: LoadedModel, text: string, opts: FoldOptions, choice: ReturnType<typeof policyChoice>, t0: number) {
  const loadMs = performance.now() - t0;
  const [{ unknownWarning }, { foldDocument, foldResumable, resolvePolicy }] = await Promise.all([import('@kvfold/onnx'), import('@kvfold/runner')]);
  const t1 = performance.now();
  if (opts.chat && !model.tokenizer.hasChatTemplate) {
    throw new CliError(`--chat: model ${model.folder.dir} has no chat template (its tokenizer_config.json has no chat_template); drop --chat to ask the questions as plain text`);
  }
  const document = model.tokenizer.encode(text, { document: true });
  const tokens = document.ids;
  const unknown = document.unknown ? [unknownWarning('the document', document.unknown, model.folder.dir)] : [];
  const queries: Query[] = opts.ask.map((q) => {
    const plain = model.tokenizer.encode(q, { document: false });
    if (plain.unknown) unknown.push(unknownWarning(`--ask ${JSON.stringify(q)}`, plain.unknown, model.folder.dir));
    return { text: q, tokens: opts.chat ? model.tokenizer.encodeChat([{ role: 'user', content: q }], { continuing: true }) : plain.ids };
  });
  const tokenizeMs = performance.now() - t1;
  for (const q of queries) {
    if (q.tokens.length === 0) throw new CliError(`--ask "${q.text}" tokenizes to nothing; ask a non-empty question`);
  }
  const { policy, name: policyName } = resolvePolicy(model, choice);
  const warnings = [...unknown, ...checkPositions(tokens.length, queries, opts, model.decoder.layout.maxPositions, choice.spec.kind === 'streaming')];
  for (const w of warnings) process.stderr.write(`kvfold: warning: ${w}\n`);

  const steps = Math.ceil(tokens.length / opts.chunkSize);
  const bar = progressBar(steps, 'folding');
  const common = {
    model: model.decoder,
    tokens,
    chunkSize: opts.chunkSize,
    queries,
    maxNewTokens: opts.maxNewTokens,
    stopTokens: model.stopTokens,
    decode: (ids: readonly number[]) => model.tokenizer.decode(ids),
    ...(await generationOf(opts)),
    nll: opts.nll === true,
    policy,
    onStep: (s: { step: number; tokens: number }) =>
      bar.update(s.step, { tokens: s.tokens, rate: Math.round((s.tokens / (performance.now() - t1)) * 1000) }),
  };
  let result: FoldDocumentResult | ResumableFoldResult;
  if (opts.checkpoint) {
    const [{ storeOptionsFromEnv }, { checkStore, openStore }, { cliEnv }] = await Promise.all([import('@kvfold/jobs'), import('@kvfold/storage'), import('../env.ts')]);
    const store = openStore(opts.checkpoint, storeOptionsFromEnv(cliEnv()));
    await checkStore(store);
    const resumable = await foldResumable({
      ...common,
      checkpoint: {
        store,
        docKey: `doc-${createHash('sha256').update(text).digest('hex')}`,
        everySteps: opts.checkpointEvery,
        codec: opts.kvCodec,
        ...(opts.fresh ? { fresh: true } : {}),
      },
      fingerprints: model.fingerprints,
      policyName,
      onResume: (r) => {
        process.stderr.write(`kvfold: resuming from step ${r.step} of ${steps} (${r.tokens} tokens) stored in ${opts.checkpoint}\n`);
        for (const w of r.warnings) process.stderr.write(`kvfold: warning: ${w}\n`);
      },
    });
    await resumable.finalize({ keepFinal: opts.reuse === true });
    result = resumable;
  } else {
    result = await foldDocument(common);
  }
  bar.stop();
  const out = {
    model: model.fingerprints.model,
    modelDir: model.folder.dir,
    tokenizer: model.fingerprints.tokenizer,
    device: opts.device,
    policy: policyName,
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
    ...('resumedFromStep' in result ? { resumedFromStep: result.resumedFromStep, checkpoint: { segments: result.checkpoint.segments, bytes: result.checkpoint.bytes } } : {}),
    warnings,
  };
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(out)}\n`);
    return;
  }
  const resumed = 'resumedFromStep' in out && out.resumedFromStep ? `, resumed from step ${out.resumedFromStep}` : '';
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

async function generationOf(opts: FoldOptions) {
  const sampling = await samplingOf(opts);
  return { ...(sampling ? { sampling } : {}), ...(opts.stop.length ? { stopStrings: opts.stop } : {}) };
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

/** Refuses (or, when allowed, warns about) positions past what the model was trained for. */
function checkPositions(docTokens: number, queries: readonly Query[], opts: FoldOptions, maxPositions: number, streaming: boolean): string[] {
  if (streaming) return []; // positions are assigned within the bounded cache
  const longestQuery = Math.max(0, ...queries.map((q) => q.tokens.length));
  // The last generated token is never fed back, so an answer of N tokens takes N - 1 positions.
  const needed = docTokens + longestQuery + (queries.length ? Math.max(0, opts.maxNewTokens - 1) : 0);
  if (needed <= maxPositions) return [];
  const msg = `the input needs ${needed} positions (${docTokens} document tokens + question and answer) but the model was trained for ${maxPositions} (max_position_embeddings)`;
  if (!opts.beyondMaxPositions) throw new CliError(`${msg}; shorten the input, or pass --beyond-max-positions to fold anyway`);
  return [`${msg}; positions beyond it are extrapolated`];
}

const round = (x: number) => Math.round(x * 100) / 100;
