/**
 * Writes a Hugging Face checkpoint folder — the layout `models import` reads — from a LlamaSpec or
 * from tensors generated on the fly: config.json in a family's own spelling (Llama, Mistral,
 * Qwen2), safetensors in F32, F16 or BF16, one file or shards with model.safetensors.index.json,
 * and the tokenizer files. Tests use it to make checkpoints with each family's quirks; the import
 * benchmark uses it to make one of several GiB, tensor by tensor.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { bfloat16Bits, float16Bits } from '@kvfold/fold-core';
import type { LlamaConfig, LlamaSpec } from '../llama-spec.ts';
import type { Family } from './architecture.ts';
import { type TensorToWrite, writeSafetensors } from './safetensors.ts';

export type CheckpointDtype = 'F32' | 'F16' | 'BF16';

/** A tensor of the checkpoint: its name, shape, and a function emitting its float32 values in order. */
export interface SourceTensor {
  readonly name: string;
  readonly shape: readonly number[];
  readonly values: (emit: (chunk: Float32Array) => void) => void;
}

export interface CheckpointContents {
  readonly config: LlamaConfig;
  readonly tensors: readonly SourceTensor[];
  readonly tokenizer: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  readonly generationConfig: Record<string, unknown>;
}

export interface WriteCheckpointOptions {
  readonly family: Family;
  /** dtype of every tensor in the files (default BF16, as most checkpoints ship). */
  readonly dtype?: CheckpointDtype;
  /** Number of safetensors shards (default 1: a single model.safetensors). */
  readonly shards?: number;
  /** Leave head_dim out of config.json, for readers to derive as hidden_size / num_attention_heads. */
  readonly omitHeadDim?: boolean;
  /** Fields merged over config.json last (e.g. sliding_window, architectures). */
  readonly configOverrides?: Record<string, unknown>;
  /** Move the chat template out of tokenizer_config.json into chat_template.jinja, as newer checkpoints do. */
  readonly chatTemplateFile?: boolean;
}

const ELEMENT_BYTES: Record<CheckpointDtype, number> = { F32: 4, F16: 2, BF16: 2 };

const MODEL_TYPE: Record<Family, { architecture: string; modelType: string }> = {
  llama: { architecture: 'LlamaForCausalLM', modelType: 'llama' },
  mistral: { architecture: 'MistralForCausalLM', modelType: 'mistral' },
  qwen2: { architecture: 'Qwen2ForCausalLM', modelType: 'qwen2' },
};

/** A spec's weights as checkpoint tensors, in the spec's order. */
export function specContents(spec: LlamaSpec): CheckpointContents {
  return {
    config: spec.config,
    tensors: [...spec.weights].map(([name, t]) => ({ name, shape: t.shape, values: (emit) => emit(t.data) })),
    tokenizer: spec.tokenizer,
    tokenizerConfig: spec.tokenizerConfig,
    generationConfig: spec.generationConfig,
  };
}

/** Writes the checkpoint folder `dir` (created if needed). Returns the weight files written. */
export function writeCheckpoint(contents: CheckpointContents, dir: string, options: WriteCheckpointOptions): string[] {
  const dtype = options.dtype ?? 'BF16';
  mkdirSync(dir, { recursive: true });
  const c = contents.config;
  const names = MODEL_TYPE[options.family];
  const hasBias = (suffix: string) => contents.tensors.some((t) => t.name.endsWith(suffix));
  const { head_dim, rope_scaling, ...rest } = c;
  const config: Record<string, unknown> = {
    architectures: [names.architecture],
    model_type: names.modelType,
    hidden_act: 'silu',
    torch_dtype: { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype],
    ...rest,
    ...(options.omitHeadDim ? {} : { head_dim }),
    rope_scaling: rope_scaling ?? null,
    ...(options.family === 'llama' ? { attention_bias: hasBias('o_proj.bias'), mlp_bias: hasBias('down_proj.bias'), pretraining_tp: 1 } : {}),
    ...(options.family === 'mistral' ? { sliding_window: null } : {}),
    ...(options.family === 'qwen2' ? { use_sliding_window: false, sliding_window: c.max_position_embeddings, max_window_layers: c.num_hidden_layers } : {}),
    use_cache: true,
    transformers_version: '4.46.0',
    ...options.configOverrides,
  };
  writeFileSync(join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  writeFileSync(join(dir, 'generation_config.json'), `${JSON.stringify(contents.generationConfig, null, 2)}\n`);
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(contents.tokenizer));
  const { chat_template, ...tokenizerConfig } = contents.tokenizerConfig;
  if (options.chatTemplateFile && typeof chat_template === 'string') {
    writeFileSync(join(dir, 'chat_template.jinja'), chat_template);
    writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);
  } else {
    writeFileSync(join(dir, 'tokenizer_config.json'), `${JSON.stringify(contents.tokenizerConfig, null, 2)}\n`);
  }

  const toWrite = contents.tensors.map((t): TensorToWrite => ({ name: t.name, dtype, shape: t.shape, write: (emit) => t.values((chunk) => emit(encode(chunk, dtype))) }));
  const shards = Math.max(1, options.shards ?? 1);
  if (shards === 1) {
    writeSafetensors(join(dir, 'model.safetensors'), toWrite, { format: 'pt' });
    return ['model.safetensors'];
  }
  // Contiguous groups of about equal bytes, as save_pretrained's max_shard_size splits them.
  const bytes = toWrite.map((t) => t.shape.reduce((a, b) => a * b, 1) * ELEMENT_BYTES[dtype]);
  const totalSize = bytes.reduce((a, b) => a + b, 0);
  const groups: TensorToWrite[][] = Array.from({ length: shards }, () => []);
  let running = 0;
  toWrite.forEach((t, i) => {
    const group = Math.min(shards - 1, Math.floor((running / totalSize) * shards));
    groups[group]?.push(t);
    running += bytes[i] as number;
  });
  const files: string[] = [];
  const weightMap: Record<string, string> = {};
  const used = groups.filter((g) => g.length);
  used.forEach((group, i) => {
    const file = `model-${String(i + 1).padStart(5, '0')}-of-${String(used.length).padStart(5, '0')}.safetensors`;
    writeSafetensors(join(dir, file), group, { format: 'pt' });
    for (const t of group) weightMap[t.name] = file;
    files.push(file);
  });
  writeFileSync(join(dir, 'model.safetensors.index.json'), `${JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2)}\n`);
  return files;
}

/** float32 values as little-endian bytes of `dtype` (16-bit formats rounded to nearest even). */
function encode(chunk: Float32Array, dtype: CheckpointDtype): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const bits = dtype === 'F16' ? float16Bits : bfloat16Bits;
  const out = new Uint16Array(chunk.length);
  for (let i = 0; i < chunk.length; i++) out[i] = bits(chunk[i] as number);
  return new Uint8Array(out.buffer);
}
