/**
 * `models import`: a Hugging Face checkpoint in, a model folder in the optimum ONNX layout out,
 * through the same graph builder as `models build`. Weights stream: each tensor is read from its
 * shard, converted to float32, transposed where the graph needs it, and written to
 * `onnx/model.onnx_data` before the next is read, so memory stays near the largest tensor.
 */
import { writeFile } from 'node:fs/promises';
import { basename, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { type AttentionKind, buildLlamaGraph, DEFAULT_ACCURACY_LEVEL, defaultAttention, type WeightDtype } from '../llama-graph.ts';
import { DEFAULT_BLOCK_SIZE, weightConfig } from '../quantize.ts';
import type { LlamaConfig } from '../llama-spec.ts';
import { assertWritableModelDir, DEFAULT_EXTERNAL_THRESHOLD, json, stageFolder, writeGraph } from '../model-folder.ts';
import type { Family } from './architecture.ts';
import { type Checkpoint, checkpointWeights, openCheckpoint } from './checkpoint.ts';
import { ImportError } from './errors.ts';
import { DTYPE_BYTES } from './safetensors.ts';

export type ImportDtype = 'f32' | 'f16' | 'int8' | 'int4';

/** The import dtypes, and the builder's weight dtype of each. */
export const IMPORT_DTYPES: Readonly<Record<ImportDtype, WeightDtype>> = { f32: 'float32', f16: 'float16', int8: 'int8', int4: 'int4' };

export interface ImportOptions {
  /** How weights are stored in the folder (default f32; f16 halves the file, int8/int4 block-quantize it; see docs/models.md). */
  readonly dtype?: ImportDtype;
  /** Called after each tensor is read, with the running totals of source bytes. */
  readonly onTensor?: (progress: { name: string; done: number; total: number }) => void;
  /** Replace whatever is at `out`, not only a model folder this tool wrote (`--force`). */
  readonly replace?: boolean;
}

export interface ImportResult {
  readonly dir: string;
  readonly files: readonly string[];
  readonly architecture: string;
  readonly family: Family;
  readonly config: LlamaConfig;
  readonly dtype: ImportDtype;
  readonly attention: AttentionKind;
  /** Source dtypes and how many tensors of each. */
  readonly sourceDtypes: Readonly<Record<string, number>>;
  readonly tensors: number;
  /** Bytes of weights read from the checkpoint. */
  readonly sourceBytes: number;
  /** The largest tensor, with its size once decoded to float32. */
  readonly largestTensor: { readonly name: string; readonly float32Bytes: number };
}

/**
 * Imports the checkpoint at `source` into a model folder at `out`: a new folder, or one this tool
 * wrote (anything else only with `replace`; see `assertWritableModelDir`).
 * Every check runs before anything is written; a failure midway leaves no folder behind.
 */
export async function importCheckpoint(source: string, out: string, options: ImportOptions = {}): Promise<ImportResult> {
  const dtype = options.dtype ?? 'f32';
  if (!Object.hasOwn(IMPORT_DTYPES, dtype)) throw new ImportError('KVF_IMPORT_UNSUPPORTED', `--dtype ${String(dtype)} is not supported: choose ${Object.keys(IMPORT_DTYPES).join(', ')}`);
  const dir = resolve(out);
  const src = resolve(source);
  const fromOut = relative(dir, src);
  if (fromOut === '' || !(fromOut === '..' || fromOut.startsWith(`..${sep}`) || isAbsolute(fromOut))) {
    throw new ImportError('KVF_IMPORT_UNSUPPORTED', `--out ${dir} would replace the checkpoint folder ${src} or a folder holding it: choose another output folder`);
  }
  await assertWritableModelDir(dir, { replace: options.replace === true });
  const checkpoint = openCheckpoint(src);
  try {
    return await write(checkpoint, dir, dtype, options.onTensor);
  } finally {
    checkpoint.close();
  }
}

const STORED: Readonly<Record<ImportDtype, string>> = {
  f32: 'float32',
  f16: 'float16 (Cast to float32 in the graph)',
  int8: `int8, block-quantized (MatMulNBits / GatherBlockQuantized, ${DEFAULT_BLOCK_SIZE} weights a scale)`,
  int4: `int4, block-quantized (MatMulNBits / GatherBlockQuantized, ${DEFAULT_BLOCK_SIZE} weights a scale)`,
};

async function write(checkpoint: Checkpoint, dir: string, dtype: ImportDtype, onTensor: ImportOptions['onTensor']): Promise<ImportResult> {
  const { arch } = checkpoint;
  const attention = defaultAttention(arch.config);
  const sourceDtypes: Record<string, number> = {};
  let total = 0;
  let largest = { name: '', float32Bytes: 0 };
  for (const [name, { entry }] of checkpoint.tensors) {
    sourceDtypes[entry.dtype] = (sourceDtypes[entry.dtype] ?? 0) + 1;
    total += entry.byteLength;
    const float32Bytes = (entry.byteLength / (DTYPE_BYTES[entry.dtype] as number)) * 4;
    if (float32Bytes > largest.float32Bytes) largest = { name, float32Bytes };
  }
  let done = 0;
  const weights = checkpointWeights(checkpoint, (name, entry) => {
    done += entry.byteLength;
    onTensor?.({ name, done, total });
  });

  // transformers 4 names the weights' dtype torch_dtype, transformers 5 dtype: both say what the arithmetic reads.
  const weightDtype = IMPORT_DTYPES[dtype];
  const weights_ = weightConfig(weightDtype, DEFAULT_BLOCK_SIZE, DEFAULT_ACCURACY_LEVEL);
  const configJson = { ...arch.configJson, ...weights_, ...('dtype' in arch.configJson ? { dtype: weights_.torch_dtype } : {}) };
  const tokenizerConfig = { ...(checkpoint.tokenizerConfig ?? {}) };
  if (tokenizerConfig.chat_template === undefined && checkpoint.chatTemplate !== null) tokenizerConfig.chat_template = checkpoint.chatTemplate;
  const generationConfig = checkpoint.generationConfig ?? { bos_token_id: arch.config.bos_token_id, eos_token_id: arch.config.eos_token_id };
  const c = arch.config;
  const readme =
    `# ${basename(checkpoint.dir)}\n\n` +
    `Imported by \`kvfold models import\` from a ${arch.architecture} checkpoint (${checkpoint.weightFiles.length} safetensors file${checkpoint.weightFiles.length === 1 ? '' : 's'}, ` +
    `${Object.entries(sourceDtypes).map(([d, n]) => `${n} ${d}`).join(', ')} tensors): ${c.num_hidden_layers} layers, hidden ${c.hidden_size}, ` +
    `${c.num_attention_heads} query / ${c.num_key_value_heads} KV heads of ${c.head_dim}, ${c.tie_word_embeddings ? 'tied' : 'untied'} lm_head` +
    `${c.rope_scaling ? `, RoPE scaling ${c.rope_scaling.rope_type}` : ''}. Weights stored as ${STORED[dtype]}; ` +
    `attention: ${attention === 'gqa' ? "onnxruntime's GroupQueryAttention (com.microsoft)" : 'MatMul/Softmax with an additive mask'}.\n`;
  const files: [string, string][] = [
    ['config.json', json(configJson)],
    ['generation_config.json', json(generationConfig)],
    ['tokenizer.json', checkpoint.tokenizerJson],
    ['tokenizer_config.json', json(tokenizerConfig)],
    ['README.md', readme],
  ];

  const written = await stageFolder(dir, async (staging) => {
    for (const [name, body] of files) await writeFile(join(staging, name), body);
    try {
      return await writeGraph(staging, DEFAULT_EXTERNAL_THRESHOLD, (external) =>
        buildLlamaGraph(arch.config, weights, { positionIds: true, attention, weightDtype }, external),
      );
    } catch (err) {
      if (!(err instanceof RangeError)) throw err;
      // A weight beyond float16's range, or one that cannot be quantized (NaN, infinite), is only found while converting it.
      if (dtype === 'f16') throw new ImportError('KVF_IMPORT_UNSUPPORTED', `${err.message} (import with --dtype f32)`, { cause: err });
      throw new ImportError('KVF_IMPORT_MALFORMED', `checkpoint ${checkpoint.dir}: ${err.message}`, { cause: err });
    }
  });
  return {
    dir,
    files: [...files.map(([n]) => n), ...written],
    architecture: arch.architecture,
    family: arch.family,
    config: arch.config,
    dtype,
    attention,
    sourceDtypes,
    tensors: checkpoint.tensors.size,
    sourceBytes: total,
    largestTensor: largest,
  };
}
