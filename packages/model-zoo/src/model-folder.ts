/**
 * Writes a model folder in the Hugging Face / optimum ONNX layout:
 *
 *   config.json  generation_config.json  tokenizer.json  tokenizer_config.json  README.md
 *   onnx/model.onnx  [onnx/model.onnx_data]
 *
 * The folder is assembled beside its destination and renamed into place, so a reader never sees
 * a half-written model.
 */
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { type AttentionKind, buildLlamaGraph, defaultAttention } from './llama-graph.ts';
import type { LlamaSpec } from './llama-spec.ts';

export interface WriteModelOptions {
  /** Include the `position_ids` input (default true, as most exports do). */
  readonly positionIds?: boolean;
  /** dtype of the KV cache inputs/outputs (default float32). */
  readonly kvDtype?: 'float32' | 'float16';
  /** Initializers of at least this many bytes go to `onnx/model.onnx_data` (default 1024, onnx's own default). */
  readonly externalThreshold?: number;
  /** How the graph computes attention (default: GroupQueryAttention, or MatMul/Softmax for one query head; see llama-graph.ts). */
  readonly attention?: AttentionKind;
}

export const DEFAULT_EXTERNAL_THRESHOLD = 1024;

export interface WrittenModel {
  readonly dir: string;
  readonly files: readonly string[];
}

export async function writeModelFolder(spec: LlamaSpec, outDir: string, options: WriteModelOptions = {}): Promise<WrittenModel> {
  const dir = resolve(outDir);
  const attention = options.attention ?? defaultAttention(spec.config, options.kvDtype);
  const { model, externalData } = buildLlamaGraph(
    spec.config,
    spec.weights,
    { positionIds: options.positionIds ?? true, attention, ...(options.kvDtype ? { kvDtype: options.kvDtype } : {}) },
    { externalThreshold: options.externalThreshold ?? DEFAULT_EXTERNAL_THRESHOLD, externalName: 'model.onnx_data' },
  );
  const config = {
    architectures: ['LlamaForCausalLM'],
    model_type: 'llama',
    torch_dtype: 'float32',
    hidden_act: 'silu',
    attention_bias: false,
    mlp_bias: false,
    use_cache: true,
    ...spec.config,
  };
  const files: [string, string | Uint8Array][] = [
    ['config.json', json(config)],
    ['generation_config.json', json(spec.generationConfig)],
    ['tokenizer.json', json(spec.tokenizer)],
    ['tokenizer_config.json', json(spec.tokenizerConfig)],
    ['README.md', `# ${spec.name}\n\n${spec.description}\n\nAttention: ${ATTENTION_NOTES[attention]}. Built by \`kvfold models build ${spec.name}\`.\n`],
    ['onnx/model.onnx', model],
  ];
  if (externalData) files.push(['onnx/model.onnx_data', externalData]);

  const staging = `${dir}.partial-${process.pid}`;
  await rm(staging, { recursive: true, force: true });
  for (const [name, body] of files) {
    const path = join(staging, name);
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, body);
  }
  await mkdir(dirname(dir), { recursive: true });
  await rm(dir, { recursive: true, force: true });
  await rename(staging, dir);
  return { dir, files: files.map(([n]) => n) };
}

const ATTENTION_NOTES: Record<AttentionKind, string> = {
  gqa: "onnxruntime's GroupQueryAttention (com.microsoft)",
  matmul: 'MatMul/Softmax with an additive mask (plain ONNX ops)',
};

function json(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
