/**
 * Writes a model folder in the Hugging Face / optimum ONNX layout:
 *
 *   config.json  generation_config.json  tokenizer.json  tokenizer_config.json  README.md
 *   onnx/model.onnx  [onnx/model.onnx_data]
 *
 * The folder is assembled beside its destination and renamed into place, so a reader never sees
 * a half-written model. It holds a marker, `kvfold-built.txt`: a folder with the marker is one this
 * tool wrote, and the only kind it replaces without `replace` (`--force`); it never replaces the
 * working folder or a folder holding it.
 */
import { lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep, isAbsolute } from 'node:path';
import { ExternalData, FileSink } from './external-data.ts';
import { type AttentionKind, buildLlamaGraph, DEFAULT_ACCURACY_LEVEL, defaultAttention, type LlamaGraphOptions, type WeightDtype } from './llama-graph.ts';
import { DEFAULT_BLOCK_SIZE, weightConfig } from './quantize.ts';
import type { LlamaSpec } from './llama-spec.ts';
import type { SerializedModel } from './onnx-graph.ts';

export interface WriteModelOptions {
  /** Include the `position_ids` input (default true, as most exports do). */
  readonly positionIds?: boolean;
  /** dtype of the KV cache inputs/outputs (default float32). */
  readonly kvDtype?: 'float32' | 'float16';
  /** Initializers of at least this many bytes go to `onnx/model.onnx_data` (default 1024, onnx's own default). */
  readonly externalThreshold?: number;
  /** How the graph computes attention (default: GroupQueryAttention, or MatMul/Softmax for one query head; see llama-graph.ts). */
  readonly attention?: AttentionKind;
  /** How the weights are stored (default float32; see `LlamaGraphOptions.weightDtype`). */
  readonly weightDtype?: WeightDtype;
  /** MatMulNBits' accuracy_level for int8/int4 (default DEFAULT_ACCURACY_LEVEL; see `LlamaGraphOptions.accuracyLevel`). */
  readonly accuracyLevel?: LlamaGraphOptions['accuracyLevel'];
  /** Replace whatever is at the destination, not only a model folder this tool wrote (`--force`). */
  readonly replace?: boolean;
}

/** The file that marks a model folder this tool wrote. */
export const MODEL_MARKER = 'kvfold-built.txt';

/** A destination a model folder may not be written to, named with what to do instead. */
export class OutputRefusedError extends Error {
  readonly code = 'KVF_MODEL_OUT_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'OutputRefusedError';
  }
}

/**
 * Refuses a destination that holds anything but a model folder this tool wrote: a file, a folder
 * of other files (unless `replace`), and always the working folder, a folder holding it, or the
 * root. A path that does not exist, or an empty folder, is fine.
 */
export async function assertWritableModelDir(dir: string, options: { replace?: boolean } = {}): Promise<void> {
  const target = resolve(dir);
  const cwd = process.cwd();
  const fromTarget = relative(target, cwd);
  if (target === dirname(target) || fromTarget === '' || !(fromTarget === '..' || fromTarget.startsWith(`..${sep}`) || isAbsolute(fromTarget))) {
    throw new OutputRefusedError(`--out ${target} is the working folder, or a folder holding it: a model folder is written to a new folder of its own, e.g. --out ${join(cwd, 'models', 'my-model')}`);
  }
  const info = await lstat(target).catch(() => null);
  if (!info || options.replace) return;
  if (!info.isDirectory()) throw new OutputRefusedError(`--out ${target} is a file, not a folder kvfold wrote: choose a new folder (or pass --force to replace it)`);
  const entries = await readdir(target);
  if (entries.length === 0 || entries.includes(MODEL_MARKER)) return;
  throw new OutputRefusedError(
    `--out ${target} holds ${entries.length} entr${entries.length === 1 ? 'y' : 'ies'} (${entries.slice(0, 3).join(', ')}${entries.length > 3 ? ', ...' : ''}) that kvfold did not write: choose a new folder (or pass --force to replace it)`,
  );
}

export const DEFAULT_EXTERNAL_THRESHOLD = 1024;

export interface WrittenModel {
  readonly dir: string;
  readonly files: readonly string[];
}

export async function writeModelFolder(spec: LlamaSpec, outDir: string, options: WriteModelOptions = {}): Promise<WrittenModel> {
  const dir = resolve(outDir);
  await assertWritableModelDir(dir, options);
  const attention = options.attention ?? defaultAttention(spec.config, options.kvDtype);
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    use_cache: true,
    ...spec.config,
    ...weightConfig(options.weightDtype ?? 'float32', DEFAULT_BLOCK_SIZE, options.accuracyLevel ?? DEFAULT_ACCURACY_LEVEL),
  };
  const files: [string, string][] = [
    ['config.json', json(config)],
    ['generation_config.json', json(spec.generationConfig)],
    ['tokenizer.json', json(spec.tokenizer)],
    ['tokenizer_config.json', json(spec.tokenizerConfig)],
    ['README.md', `# ${spec.name}\n\n${spec.description}\n\nAttention: ${ATTENTION_NOTES[attention]}. Built by \`kvfold models build ${spec.name}\`.\n`],
  ];
  const written = await stageFolder(dir, async (staging) => {
    for (const [name, body] of files) await writeFile(join(staging, name), body);
    return writeGraph(staging, options.externalThreshold ?? DEFAULT_EXTERNAL_THRESHOLD, (external) =>
      buildLlamaGraph(
        spec.config,
        spec.weights,
        { positionIds: options.positionIds ?? true, attention, ...(options.kvDtype ? { kvDtype: options.kvDtype } : {}), ...(options.weightDtype ? { weightDtype: options.weightDtype } : {}), ...(options.accuracyLevel !== undefined ? { accuracyLevel: options.accuracyLevel } : {}) },
        external,
      ),
    );
  });
  return { dir, files: [...files.map(([n]) => n), ...written] };
}

/**
 * Fills a folder beside `dir` and renames it into place, so a reader never sees a half-written
 * model; a failure removes the partial folder. Returns what `fill` returns.
 */
export async function stageFolder<T>(dir: string, fill: (staging: string) => Promise<T>): Promise<T> {
  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  await mkdir(staging, { recursive: true });
  let result: T;
  try {
    result = await fill(staging);
    await writeFile(join(staging, MODEL_MARKER), 'written by kvfold (models build or models import); kvfold replaces this folder when asked to write here\n');
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    throw err;
  }
  await mkdir(dirname(dir), { recursive: true });
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  return result;
}

/**
 * Writes `onnx/model.onnx` and, when some initializer reaches `threshold` bytes, `onnx/model.onnx_data`
 * under `folder`, streaming each weight to the data file as `build` adds it. Returns the files written.
 */
export async function writeGraph(folder: string, threshold: number, build: (external: ExternalData) => SerializedModel): Promise<string[]> {
  const sink = new FileSink(join(folder, 'onnx', 'model.onnx_data'));
  let model: Uint8Array;
  try {
    model = build(new ExternalData('model.onnx_data', threshold, sink)).model;
  } finally {
    sink.close();
  }
  await mkdir(join(folder, 'onnx'), { recursive: true });
  await writeFile(join(folder, 'onnx', 'model.onnx'), model);
  return sink.length > 0 ? ['onnx/model.onnx', 'onnx/model.onnx_data'] : ['onnx/model.onnx'];
}

const ATTENTION_NOTES: Record<AttentionKind, string> = {
  gqa: "onnxruntime's GroupQueryAttention (com.microsoft)",
  matmul: 'MatMul/Softmax with an additive mask (plain ONNX ops)',
};

/** JSON as the folder's files are written: two-space indent, a final newline. */
export function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
