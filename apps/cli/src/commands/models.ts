/** `kvfold models build|import|list|push`: build the zoo's models, or import a checkpoint, as ONNX folders. */
import type { ImportDtype } from '@kvfold/model-zoo';
import { type Command, Option } from 'commander';
import { CliError } from '../cli-error.ts';
import { nonNegativeInt } from '../options.ts';

/**
 * The model-zoo's MODEL_NAMES, written out so that the command tree loads without the model zoo
 * (`kvfold --help` stays fast); startup.test.ts checks the two agree.
 */
export const MODEL_NAMES = ['tiny-llama', 'recall', 'kv-heavy'] as const;

/** The model-zoo's import dtypes (IMPORT_DTYPES), written out for the same reason. */
export const WEIGHT_DTYPES = ['f32', 'f16', 'int8', 'int4'] as const;
const WEIGHT_DTYPE_HELP =
  'how the weights are stored: f32; f16 (half the size on disk, float32 once loaded); int8 or int4 (block-quantized MatMulNBits: a quarter or an eighth of f32, in memory too; docs/models.md)';

export function registerModels(program: Command): void {
  const models = program.command('models').description('build, import, list and push model folders');
  models
    .command('build')
    .description('write a model folder in the Hugging Face / optimum ONNX layout')
    .argument('<name>', `model to build: ${MODEL_NAMES.join(', ')}`)
    .requiredOption('--out <dir>', 'a new folder to write, or one kvfold wrote (replaced)')
    .option('--force', 'replace whatever is at --out (never the working folder or a folder holding it)')
    .option('--seed <n>', 'seed of the random weights', nonNegativeInt('--seed'))
    .option('--no-position-ids', 'export without the position_ids input (positions follow the cache length)')
    .addOption(new Option('--kv-dtype <dtype>', 'dtype of the exported KV cache (past_key_values / present)').choices(['float32', 'float16']).default('float32'))
    .addOption(new Option('--dtype <dtype>', WEIGHT_DTYPE_HELP).choices(WEIGHT_DTYPES).default('f32'))
    .option('--json', 'print the result as JSON')
    .action(async (name: string, opts: { out: string; force?: boolean; seed?: number; positionIds: boolean; kvDtype: 'float32' | 'float16'; dtype: ImportDtype; json?: boolean }) => {
      if (!(MODEL_NAMES as readonly string[]).includes(name)) {
        throw new CliError(`unknown model "${name}": choose one of ${MODEL_NAMES.join(', ')}`);
      }
      const { IMPORT_DTYPES, modelSpec, writeModelFolder } = await import('@kvfold/model-zoo');
      const started = performance.now();
      const spec = modelSpec(name, opts.seed === undefined ? {} : { seed: opts.seed });
      const written = await writeModelFolder(spec, opts.out, { positionIds: opts.positionIds, kvDtype: opts.kvDtype, weightDtype: IMPORT_DTYPES[opts.dtype], replace: opts.force === true });
      const ms = Math.round(performance.now() - started);
      if (opts.json) process.stdout.write(`${JSON.stringify({ name, dir: written.dir, files: written.files, ms })}\n`);
      else process.stdout.write(`built ${name} in ${written.dir} (${written.files.join(', ')}) in ${ms} ms\n`);
    });
  models
    .command('import')
    .description('write a model folder from a Hugging Face checkpoint (safetensors; Llama, Mistral, Qwen2 families; docs/models.md)')
    .argument('<checkpoint-dir>', 'checkpoint folder: config.json, model.safetensors or sharded model-*.safetensors with their index, tokenizer.json')
    .requiredOption('--out <dir>', 'a new folder to write, or one kvfold wrote (replaced)')
    .option('--force', 'replace whatever is at --out (never the working folder or a folder holding it)')
    .addOption(new Option('--dtype <dtype>', WEIGHT_DTYPE_HELP).choices(WEIGHT_DTYPES).default('f32'))
    .option('--json', 'print the result as JSON')
    .action(async (checkpoint: string, opts: { out: string; force?: boolean; dtype: ImportDtype; json?: boolean }) => {
      const { importCheckpoint } = await import('@kvfold/model-zoo');
      const started = performance.now();
      const tty = process.stderr.isTTY === true && !opts.json;
      const result = await importCheckpoint(checkpoint, opts.out, {
        dtype: opts.dtype,
        replace: opts.force === true,
        ...(tty ? { onTensor: ({ done, total }) => process.stderr.write(`\rimporting ${((100 * done) / total).toFixed(0)}% of ${(total / 2 ** 30).toFixed(2)} GiB`) } : {}),
      });
      if (tty) process.stderr.write('\n');
      const ms = Math.round(performance.now() - started);
      const { dir, files, architecture, dtype, tensors, sourceBytes, largestTensor } = result;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ checkpoint, dir, files, architecture, dtype, attention: result.attention, tensors, sourceBytes, sourceDtypes: result.sourceDtypes, largestTensor, ms })}\n`);
      } else {
        process.stdout.write(`imported ${architecture} (${tensors} tensors, ${(sourceBytes / 2 ** 20).toFixed(1)} MiB) into ${dir} as ${dtype} in ${ms} ms; use --model ${dir}\n`);
      }
    });
  models
    .command('push')
    .description('upload a model folder to an object store, for workers to load by URI (files of any size, streamed)')
    .argument('<dir>', 'model folder')
    .argument('<uri>', 'destination, e.g. s3://bucket/models/tiny-llama')
    .option('--json', 'print the result as JSON')
    .action(async (dir: string, uri: string, opts: { json?: boolean }) => {
      const [{ storeOptionsFromEnv }, { pushModel }, { cliEnv }] = await Promise.all([import('@kvfold/jobs'), import('@kvfold/runner'), import('../env.ts')]);
      const started = performance.now();
      const { files, bytes, fingerprint } = await pushModel(dir, uri, storeOptionsFromEnv(cliEnv()));
      const ms = Math.round(performance.now() - started);
      if (opts.json) process.stdout.write(`${JSON.stringify({ uri, files, bytes, fingerprint, ms })}\n`);
      else process.stdout.write(`pushed ${files} files (${(bytes / 2 ** 20).toFixed(1)} MiB) to ${uri} in ${ms} ms, model ${fingerprint}; use --model ${uri}\n`);
    });
  models
    .command('list')
    .description('list the models `models build` knows')
    .action(async () => {
      const { modelSpec } = await import('@kvfold/model-zoo');
      for (const name of MODEL_NAMES) process.stdout.write(`${name}\t${modelSpec(name).description}\n`);
    });
}
