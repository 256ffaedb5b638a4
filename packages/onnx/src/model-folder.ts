/**
 * Reads a model folder in the Hugging Face / optimum ONNX layout and checks it before any session
 * is created, so a wrong path or a broken file is reported with the file named.
 *
 *   config.json  generation_config.json  tokenizer.json  tokenizer_config.json
 *   onnx/model*.onnx  [onnx/model*.onnx_data]
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ropeFrequencies, type RopeScaling } from '@kvfold/fold-core';
import { ModelError } from './errors.ts';

/** The `config.json` fields the adapter reads. Real configs carry many more; they are kept, not checked. */
const ConfigSchema = z.looseObject({
  model_type: z.string().optional(),
  vocab_size: z.number().int().positive(),
  hidden_size: z.number().int().positive(),
  num_hidden_layers: z.number().int().positive(),
  num_attention_heads: z.number().int().positive(),
  num_key_value_heads: z.number().int().positive().optional(),
  head_dim: z.number().int().positive().nullish(),
  max_position_embeddings: z.number().int().positive(),
  rope_theta: z.number().positive().optional(),
  bos_token_id: z.union([z.number().int(), z.null()]).optional(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
  torch_dtype: z.string().optional(),
  /** Written by `models build`/`import` for int8/int4 folders (model-zoo's `weightConfig`). */
  quantization: z.looseObject({ method: z.string(), bits: z.number(), block_size: z.number().optional() }).optional(),
});
export type ModelConfig = z.infer<typeof ConfigSchema>;

/** What a folder's weights are, as its config.json says: `int4 (MatMulNBits, 32 a scale)`, `float16`, `float32`. */
export function weightsOf(folder: ModelFolder): string {
  const q = folder.config.quantization;
  if (q) return `int${q.bits} (${q.method}${q.block_size ? `, ${q.block_size} a scale` : ''})`;
  return folder.config.torch_dtype ?? 'float32';
}

const GenerationConfigSchema = z.looseObject({
  eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
  bos_token_id: z.union([z.number().int(), z.null()]).optional(),
});

export interface ModelFolder {
  readonly dir: string;
  readonly config: ModelConfig;
  readonly generationConfig: z.infer<typeof GenerationConfigSchema>;
  readonly tokenizerJson: Record<string, unknown>;
  readonly tokenizerConfig: Record<string, unknown>;
  /** The ONNX file the session loads. */
  readonly onnxPath: string;
  /** Its external-data files, if any. */
  readonly externalData: readonly string[];
  /** Every file that defines the model's behaviour, for the fingerprint (sorted, relative to dir). */
  readonly files: readonly string[];
}

const EXPECTED = 'expected the optimum export layout: config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx';

/**
 * Opens a model folder.
 * @param onnxFile file under `onnx/` to load, e.g. `model_fp16.onnx` (default `model.onnx`, else the only `model*.onnx`).
 */
export async function readModelFolder(path: string, onnxFile?: string): Promise<ModelFolder> {
  const dir = resolve(path);
  const info = await stat(dir).catch(() => null);
  if (!info) throw new ModelError('KVF_MODEL_NOT_FOUND', `model folder ${dir} does not exist (${EXPECTED}); build one with \`kvfold models build tiny-llama --out ${path}\``);
  if (!info.isDirectory()) {
    throw new ModelError('KVF_MODEL_NOT_FOUND', `${dir} is a file, not a model folder (${EXPECTED}); give --model a model folder, e.g. one built with \`kvfold models build tiny-llama --out <a new folder>\``);
  }
  const config = parseWith(ConfigSchema, await readJson(dir, 'config.json'), dir, 'config.json');
  const generationConfig = parseWith(GenerationConfigSchema, await readJson(dir, 'generation_config.json', {}), dir, 'generation_config.json');
  const tokenizerJson = (await readJson(dir, 'tokenizer.json')) as Record<string, unknown>;
  const tokenizerConfig = (await readJson(dir, 'tokenizer_config.json', {})) as Record<string, unknown>;

  const onnxDir = join(dir, 'onnx');
  const entries = await readdir(onnxDir).catch(() => null);
  if (!entries) throw new ModelError('KVF_MODEL_NOT_FOUND', `model folder ${dir} has no onnx/ directory (${EXPECTED})`);
  const candidates = entries.filter((f) => /^model.*\.onnx$/.test(f)).sort();
  const chosen = onnxFile ?? (candidates.includes('model.onnx') ? 'model.onnx' : candidates.length === 1 ? candidates[0] : undefined);
  if (!chosen || !entries.includes(chosen)) {
    throw new ModelError(
      'KVF_MODEL_NOT_FOUND',
      candidates.length
        ? `model folder ${dir}: choose one of onnx/${candidates.join(', onnx/')}${onnxFile ? ` (onnx/${onnxFile} is absent)` : ''}`
        : `model folder ${dir} has no onnx/model*.onnx (${EXPECTED})`,
    );
  }
  const externalData = entries.filter((f) => f.startsWith(`${chosen}_data`) || f === `${chosen}.data`).sort();
  const present = ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json'];
  const files: string[] = [];
  for (const f of present) if (await stat(join(dir, f)).catch(() => null)) files.push(f);
  files.push(`onnx/${chosen}`, ...externalData.map((f) => `onnx/${f}`));
  return {
    dir,
    config,
    generationConfig,
    tokenizerJson,
    tokenizerConfig,
    onnxPath: join(onnxDir, chosen),
    externalData: externalData.map((f) => join(onnxDir, f)),
    files: files.sort(),
  };
}

async function readJson(dir: string, name: string, fallback?: unknown): Promise<unknown> {
  const path = join(dir, name);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    if (fallback !== undefined) return fallback;
    throw new ModelError('KVF_MODEL_NOT_FOUND', `model folder ${dir} has no ${name} (${EXPECTED})`);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ModelError('KVF_MODEL_MALFORMED', `${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, dir: string, name: string): T {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
  throw new ModelError('KVF_MODEL_MALFORMED', `${join(dir, name)} is not a usable model config: ${issues}`);
}

/** The ids that end generation: generation_config's eos ids, else config's. */
export function stopTokenIds(folder: ModelFolder): number[] {
  const eos = folder.generationConfig.eos_token_id ?? folder.config.eos_token_id;
  if (eos === null || eos === undefined) return [];
  return Array.isArray(eos) ? eos : [eos];
}

/**
 * The model's RoPE inverse frequencies from config.json (rope_theta, head_dim, and a llama3
 * rope_scaling), for policies that re-rotate cached keys. Other scalings are refused rather than
 * guessed.
 */
export function ropeInverseFrequencies(folder: ModelFolder): Float64Array {
  const c = folder.config;
  const scaling = (c as Record<string, unknown>).rope_scaling as Record<string, unknown> | null | undefined;
  const kind = scaling ? (scaling.rope_type ?? scaling.type ?? 'default') : 'default';
  if (kind !== 'default' && kind !== 'llama3') {
    throw new ModelError('KVF_MODEL_MALFORMED', `${folder.dir}/config.json uses rope_scaling ${JSON.stringify(scaling)}; re-rotating cached keys supports plain and llama3 RoPE`);
  }
  const headDim = c.head_dim ?? c.hidden_size / c.num_attention_heads;
  return ropeFrequencies(c.rope_theta ?? 10000, headDim, kind === 'llama3' ? ({ ...scaling, rope_type: 'llama3' } as RopeScaling) : null);
}
