/** `kvfold drift`: per-step drift between folded and single-pass logits (max abs and KL). */
import type { KvWidth } from '@kvfold/fold-core';
import type { Device } from '@kvfold/onnx';
import { type Command, InvalidArgumentError } from 'commander';
import { nonNegativeInt, parseTokenCount, positiveInt } from '../options.ts';
import { progressBar } from '../progress.ts';

/**
 * @kvfold/bench's DEFAULT_REFERENCE_LIMIT_MIB, written out so that the command tree loads without
 * the bench package (`kvfold --help` stays fast); startup.test.ts checks the two agree.
 */
export const DEFAULT_REFERENCE_LIMIT_MIB = 4096;

interface DriftOptions {
  model: string;
  length: number;
  chunkSize: number;
  kv: KvWidth;
  referenceLimitMib: number;
  seed: number;
  out?: string;
  device: Device;
  threads?: number;
  json?: boolean;
}

export function registerDrift(program: Command): void {
  program
    .command('drift')
    .description('per-step drift between folded and single-pass logits: max |Δ logit| and KL(single ‖ folded) for every fold step (docs/drift.md)')
    .requiredOption('--model <dir>', 'model folder (Hugging Face / optimum ONNX layout)')
    .requiredOption('--length <n>', 'document tokens, e.g. 4k', (v) => parseTokenCount('--length', v))
    .requiredOption('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'))
    .option('--kv <width>', 'width the fold holds its cache at: f32, f16 or int8', parseKv, 'f32')
    .option('--reference-limit-mib <n>', 'bound on the single-pass reference’s estimated memory; longer documents get a reference for their longest prefix that fits', positiveInt('--reference-limit-mib'), DEFAULT_REFERENCE_LIMIT_MIB)
    .option('--seed <n>', 'seed of the document', nonNegativeInt('--seed'), 0)
    .option('--out <dir>', 'write drift.md, drift.json and drift.svg here')
    .option('--device <device>', 'execution provider: cpu, webgpu or cuda', parseDevice, 'cpu')
    .option('--threads <n>', 'ONNX Runtime intra-op threads', positiveInt('--threads'))
    .option('--json', 'print the result as JSON instead of the table')
    .action(async (opts: DriftOptions) => {
      const [{ loadModel }, { driftDocument, driftMarkdown, measureDrift, modelDims, niahModel, writeDrift }, { KV_WIDTHS }] = await Promise.all([
        import('@kvfold/onnx'),
        import('@kvfold/bench'),
        import('@kvfold/fold-core'),
      ]);
      const loaded = await loadModel(opts.model, { device: opts.device, kvDtype: KV_WIDTHS[opts.kv], ...(opts.threads ? { threads: opts.threads } : {}) });
      try {
        const tokens = driftDocument(niahModel(loaded), opts.length, opts.seed);
        const bar = progressBar(Math.ceil(opts.length / opts.chunkSize), 'drift');
        const result = await measureDrift({
          model: loaded.decoder,
          dims: modelDims(loaded),
          tokens,
          chunkSize: opts.chunkSize,
          kv: opts.kv,
          referenceLimitMiB: opts.referenceLimitMib,
          onStep: (s) => bar.update(s.step, { tokens: s.end, rate: 0 }),
        });
        bar.stop();
        const command = `kvfold ${process.argv.slice(2).join(' ')}`;
        const files = opts.out ? await writeDrift(opts.out, result, loaded.folder.dir, command) : [];
        if (opts.json) process.stdout.write(`${JSON.stringify({ ...result, files })}\n`);
        else process.stdout.write(`${driftMarkdown(result, loaded.folder.dir)}${files.length ? `wrote ${files.join(', ')}\n` : ''}`);
      } finally {
        await loaded.close();
      }
    });
}

function parseKv(value: string): KvWidth {
  if (value === 'f32' || value === 'f16' || value === 'int8') return value;
  throw new InvalidArgumentError(`--kv must be f32, f16 or int8, got "${value}".`);
}

function parseDevice(value: string): Device {
  if (value === 'cpu' || value === 'webgpu' || value === 'cuda') return value;
  throw new InvalidArgumentError(`--device must be cpu, webgpu or cuda, got "${value}".`);
}
