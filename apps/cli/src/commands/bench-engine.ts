/**
 * `kvfold bench engine`: the engine's bars, measured. For tiny-llama, recall and kv-heavy it folds
 * with KV-Fold's engine and with a plain onnxruntime-node loop over the same folder, each run in a
 * fresh process, and reports tokens/s, peak RSS against weights + KV + workspace, bytes copied per
 * step, and model-FLOP utilisation against ONNX Runtime's own MatMul on the same threads.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { BenchCase, BenchModel, DeviceCheckRow, EngineMeasurement, EngineRunOptions } from '@kvfold/bench';
import type { Command } from 'commander';
import { CliError } from '../cli-error.ts';
import { parseTokenCount, positiveInt } from '../options.ts';
import { kvfoldChild } from './bench-child.ts';

interface EngineBenchFlags {
  models?: string;
  cases?: string;
  chunkSize: number;
  threads: number;
  repeats: number;
  modelsDir?: string;
  out: string;
}

const MODELS: readonly BenchModel[] = ['tiny-llama', 'recall', 'kv-heavy'];

export function registerEngineBench(bench: Command): void {
  bench
    .command('engine')
    .description("the engine against a plain onnxruntime-node loop and ONNX Runtime's MatMul: tokens/s, peak RSS, copies per step, utilisation")
    .option('--cases <list>', 'model:tokens[:peer] cases, e.g. tiny-llama:8k:peer,kv-heavy:16k (default: the bars’ cases)')
    .option('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'), 256)
    .option('--threads <n>', 'ONNX Runtime intra-op threads, for the folds and the MatMul ceiling', positiveInt('--threads'), availableParallelism())
    .option('--repeats <n>', 'runs of each case and engine, interleaved; medians are reported', positiveInt('--repeats'), 3)
    .option('--models-dir <dir>', 'where the models are built, each in a folder of its name, replaced on each run (default: a temporary folder)')
    .option('--out <file>', 'JSON result file', 'bench-results/engine.json')
    .action(async (opts: EngineBenchFlags) => runBench(opts));

  bench
    .command('engine-one', { hidden: true })
    .requiredOption('--model <dir>')
    .requiredOption('--tokens <n>', '', (v) => parseTokenCount('--tokens', v))
    .requiredOption('--chunk-size <n>', '', positiveInt('--chunk-size'))
    .requiredOption('--engine <engine>')
    .requiredOption('--threads <n>', '', positiveInt('--threads'))
    .action(async (o: { model: string; tokens: number; chunkSize: number; engine: string; threads: number }) => {
      if (o.engine !== 'kvfold' && o.engine !== 'plain') throw new CliError(`--engine must be kvfold or plain, got "${o.engine}"`);
      const { measureEngine } = await import('@kvfold/bench');
      const m = await measureEngine({ modelDir: o.model, tokens: o.tokens, chunkSize: o.chunkSize, engine: o.engine, threads: o.threads });
      process.stdout.write(`${JSON.stringify(m)}\n`);
    });
}

function parseCases(value: string): BenchCase[] {
  return value.split(',').map((c) => {
    const [model, tokens, peer] = c.split(':');
    if (!MODELS.includes(model as BenchModel)) throw new CliError(`--cases: unknown model "${model}" in "${c}"; use ${MODELS.join(', ')}`);
    return { model: model as BenchModel, tokens: parseTokenCount('--cases', tokens ?? ''), peer: peer === 'peer' };
  });
}

async function runBench(opts: EngineBenchFlags): Promise<void> {
  const [{ DEFAULT_CASES, runEngineBench }, { modelSpec, writeModelFolder }] = await Promise.all([import('@kvfold/bench'), import('@kvfold/model-zoo')]);
  const cases = opts.cases ? parseCases(opts.cases) : DEFAULT_CASES;
  const scratch = opts.modelsDir ? null : await mkdtemp(join(tmpdir(), 'kvfold-bench-engine-'));
  const modelsDir = opts.modelsDir ? resolve(opts.modelsDir) : (scratch as string);
  try {
    for (const model of new Set(cases.map((c) => c.model))) await writeModelFolder(modelSpec(model), join(modelsDir, model), { replace: true });
    process.stdout.write(`machine: ${cpus()[0]?.model ?? 'unknown CPU'}, ${availableParallelism()} cores; ${opts.threads} threads; chunk ${opts.chunkSize}; ${opts.repeats} runs each\n`);
    const report = await runEngineBench({
      cases,
      chunkSize: opts.chunkSize,
      threads: opts.threads,
      repeats: opts.repeats,
      modelDir: (m) => join(modelsDir, m),
      runChild,
      log: (line) => process.stdout.write(`${line}\n`),
    });
    const out = resolve(opts.out);
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify({ benchmark: 'engine', date: new Date().toISOString(), cpu: cpus()[0]?.model, cores: availableParallelism(), ...report }, null, 2)}\n`);
    process.stdout.write(`wrote ${out}\n`);
    if (report.bars.some((b) => !b.pass)) process.exitCode = 1;
  } finally {
    if (scratch) await rm(scratch, { recursive: true, force: true });
  }
}

/** Runs `bench engine-one` in a fresh process. */
function runChild(o: EngineRunOptions): Promise<EngineMeasurement> {
  const args = ['bench', 'engine-one', '--model', o.modelDir, '--tokens', String(o.tokens), '--chunk-size', String(o.chunkSize), '--engine', o.engine, '--threads', String(o.threads)];
  return kvfoldChild<EngineMeasurement>(args, `the ${o.engine} fold of ${o.tokens} tokens on ${o.modelDir}`);
}

interface DeviceFlags {
  device: string;
  cases: string;
  chunkSize: number;
  cpuTokens?: number;
  modelsDir?: string;
  out: string;
}

/** `kvfold bench device`: the same folds on an accelerator and on the CPU, compared (scripts/device-check.sh runs it). */
export function registerDeviceBench(bench: Command): void {
  bench
    .command('device')
    .description('fold on a device and on the CPU: max |logit difference| and tokens/s of each')
    .requiredOption('--device <device>', 'webgpu or cuda (cpu compares the CPU with itself)')
    .option('--cases <list>', 'model:tokens cases', 'tiny-llama:8k,tiny-llama:32k,kv-heavy:8k,kv-heavy:32k')
    .option('--chunk-size <n>', 'tokens per fold step', positiveInt('--chunk-size'), 256)
    .option('--cpu-tokens <n>', 'fold at most this many tokens on the CPU (the comparison covers them)', (v) => parseTokenCount('--cpu-tokens', v))
    .option('--models-dir <dir>', 'where the models are built, each in a folder of its name, replaced on each run (default: a temporary folder)')
    .option('--out <file>', 'JSON result file', 'bench-results/device.json')
    .action(async (o: DeviceFlags) => {
      if (o.device !== 'cpu' && o.device !== 'webgpu' && o.device !== 'cuda') throw new CliError(`--device must be cpu, webgpu or cuda, got "${o.device}"`);
      const cases = parseCases(o.cases);
      const [{ deviceCheck }, { modelSpec, writeModelFolder }] = await Promise.all([import('@kvfold/bench'), import('@kvfold/model-zoo')]);
      const scratch = o.modelsDir ? null : await mkdtemp(join(tmpdir(), 'kvfold-bench-device-'));
      const dir = o.modelsDir ? resolve(o.modelsDir) : (scratch as string);
      try {
        const rows: DeviceCheckRow[] = [];
        for (const model of new Set(cases.map((c) => c.model))) await writeModelFolder(modelSpec(model), join(dir, model), { replace: true });
        for (const c of cases) {
          const r = await deviceCheck({ modelDir: join(dir, c.model), model: c.model, device: o.device, tokens: c.tokens, chunkSize: o.chunkSize, ...(o.cpuTokens ? { cpuTokens: o.cpuTokens } : {}) });
          rows.push(r);
          process.stdout.write(
            `${c.model} ${c.tokens}: ${o.device} ${r.deviceTokensPerSecond.toFixed(0)} tok/s, cpu ${r.cpuTokensPerSecond.toFixed(0)} tok/s (${r.cpuTokens} tokens); max |delta| ${r.maxAbsDiff.toExponential(2)}, argmax agreement ${(r.argmaxAgreement * 100).toFixed(2)}%; ${r.plan}\n`,
          );
        }
        const out = resolve(o.out);
        await mkdir(dirname(out), { recursive: true });
        await writeFile(out, `${JSON.stringify({ benchmark: 'device', date: new Date().toISOString(), cpu: cpus()[0]?.model, rows }, null, 2)}\n`);
        process.stdout.write(`wrote ${out}\n`);
      } finally {
        if (scratch) await rm(scratch, { recursive: true, force: true });
      }
    });
}
