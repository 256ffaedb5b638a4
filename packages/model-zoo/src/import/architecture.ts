/**
 * Which checkpoints `models import` builds, decided from `config.json` alone, before any weight is
 * read: the architecture, its family's defaults, RoPE and its scaling, sliding windows. Anything
 * the graph builder does not implement exactly is refused here, by name, with what is supported.
 */
import { z } from 'zod';
import type { LlamaConfig } from '../llama-spec.ts';
import type { RopeScaling } from '../rope.ts';
import { ImportError } from './errors.ts';

export type Family = 'llama' | 'mistral' | 'qwen2';

/** The architectures imported, by the `architectures` name transformers writes. */
export const ARCHITECTURES: Readonly<Record<string, Family>> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
};

const MODEL_TYPES: Readonly<Record<string, string>> = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM' };

/** What the refusals say is supported. */
export const SUPPORTED = 'LlamaForCausalLM (Llama 2, 3, 3.1, 3.2, TinyLlama, SmolLM), MistralForCausalLM and Qwen2ForCausalLM';

const OTHER_MODELS = 'for another decoder, export it to ONNX with optimum and pass that folder to --model (docs/models.md)';

/** transformers' config defaults where a checkpoint leaves a field out, per family. */
const DEFAULTS: Readonly<Record<Family, { max_position_embeddings: number }>> = {
  llama: { max_position_embeddings: 2048 },
  mistral: { max_position_embeddings: 4096 * 32 },
  qwen2: { max_position_embeddings: 32768 },
};
const DEFAULT_ROPE_THETA = 10000;
const DEFAULT_RMS_NORM_EPS = 1e-6;

/** Projection names (under `model.layers.{i}.`) and the flag that gives each a bias, per family. */
export const ATTENTION_PROJECTIONS = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj'] as const;
export const MLP_PROJECTIONS = ['mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'] as const;

const positiveInt = z.number().int().positive();
const tokenId = z.union([z.number().int(), z.null()]);
const ConfigSchema = z.looseObject({
  architectures: z.array(z.string()).optional(),
  model_type: z.string().optional(),
  vocab_size: positiveInt,
  hidden_size: positiveInt,
  intermediate_size: positiveInt,
  num_hidden_layers: positiveInt,
  num_attention_heads: positiveInt,
  num_key_value_heads: positiveInt.nullish(),
  head_dim: positiveInt.nullish(),
  hidden_act: z.string().optional(),
  max_position_embeddings: positiveInt.optional(),
  rms_norm_eps: z.number().positive().optional(),
  rope_theta: z.number().positive().optional(),
  rope_scaling: z.looseObject({}).nullish(),
  rope_parameters: z.looseObject({}).nullish(),
  partial_rotary_factor: z.number().optional(),
  tie_word_embeddings: z.boolean().optional(),
  attention_bias: z.boolean().optional(),
  mlp_bias: z.boolean().optional(),
  sliding_window: positiveInt.nullish(),
  use_sliding_window: z.boolean().optional(),
  quantization_config: z.looseObject({}).nullish(),
  bos_token_id: tokenId.optional(),
  eos_token_id: z.union([z.number().int(), z.array(z.number().int()), z.null()]).optional(),
  pad_token_id: tokenId.optional(),
});

export interface Architecture {
  /** The `architectures` name, e.g. `Qwen2ForCausalLM`. */
  readonly architecture: string;
  readonly family: Family;
  /** The config the graph is built from, every default resolved. */
  readonly config: LlamaConfig;
  /** Projections (e.g. `self_attn.q_proj`) whose bias the checkpoint must hold. */
  readonly biases: readonly string[];
  /** config.json for the folder: the checkpoint's own, with the resolved values written in. */
  readonly configJson: Record<string, unknown>;
}

/**
 * Reads a checkpoint's `config.json` (parsed) and returns what the builder makes of it, or throws
 * `KVF_IMPORT_UNSUPPORTED` / `KVF_IMPORT_MALFORMED` naming `path` and the field.
 */
export function readArchitecture(raw: unknown, path: string): Architecture {
  const architecture = architectureName(raw, path);
  const family = ARCHITECTURES[architecture];
  if (!family) {
    throw new ImportError('KVF_IMPORT_UNSUPPORTED', `${path}: architecture ${architecture} is not supported; models import builds ${SUPPORTED}; ${OTHER_MODELS}`);
  }
  const parsed = ConfigSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new ImportError('KVF_IMPORT_MALFORMED', `${path} is not a usable ${architecture} config: ${issues}`);
  }
  const c = parsed.data;
  const unsupported = (what: string) => new ImportError('KVF_IMPORT_UNSUPPORTED', `${path}: ${what}`);

  if (c.quantization_config) {
    const method = (c.quantization_config as { quant_method?: unknown }).quant_method;
    throw unsupported(`the checkpoint is quantized (quantization_config.quant_method ${JSON.stringify(method ?? 'unknown')}); models import reads unquantized F32, F16 or BF16 weights: import the unquantized checkpoint`);
  }
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw unsupported(`hidden_act "${act}" is not supported; the builder implements the SwiGLU MLP with silu`);
  if (c.partial_rotary_factor !== undefined && c.partial_rotary_factor !== 1) {
    throw unsupported(`partial_rotary_factor ${c.partial_rotary_factor} is not supported; the builder rotates every dimension of a head (partial_rotary_factor 1)`);
  }

  const heads = c.num_attention_heads;
  const kvHeads = c.num_key_value_heads ?? heads;
  if (heads % kvHeads !== 0) throw malformed(path, `num_attention_heads ${heads} is not a multiple of num_key_value_heads ${kvHeads}`);
  const headDim = c.head_dim ?? c.hidden_size / heads;
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) {
    throw malformed(path, `head_dim ${c.head_dim ?? `hidden_size / num_attention_heads = ${c.hidden_size} / ${heads} = ${headDim}`} must be an even integer`);
  }
  const maxPositions = c.max_position_embeddings ?? DEFAULTS[family].max_position_embeddings;

  // RoPE: transformers 4.x writes rope_theta + rope_scaling; 5.x folds both into rope_parameters.
  const ropeParameters = (c.rope_parameters ?? null) as Record<string, unknown> | null;
  const ropeTheta = c.rope_theta ?? (typeof ropeParameters?.rope_theta === 'number' ? ropeParameters.rope_theta : DEFAULT_ROPE_THETA);
  const ropeScaling = readRopeScaling((c.rope_scaling ?? ropeParameters ?? null) as Record<string, unknown> | null, c.rope_scaling ? 'rope_scaling' : 'rope_parameters', path);

  // A sliding window that can bind changes which keys a query sees; the graph attends to all.
  const window = c.sliding_window ?? null;
  const windowOn = family === 'qwen2' ? c.use_sliding_window === true : family === 'mistral';
  if (windowOn && window !== null && window < maxPositions) {
    const flag = family === 'qwen2' ? 'use_sliding_window true, ' : '';
    throw unsupported(
      `sliding-window attention is active (${flag}sliding_window ${window} < max_position_embeddings ${maxPositions}); the graph attends to every cached token, which changes the model's answers past ${window} tokens. models import supports ${architecture} checkpoints whose sliding window is off (sliding_window null${family === 'qwen2' ? ' or use_sliding_window false' : ''}) or at least max_position_embeddings`,
    );
  }

  const biases: string[] = [];
  if (family === 'qwen2') biases.push('self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj');
  if (family === 'llama' && c.attention_bias) biases.push(...ATTENTION_PROJECTIONS);
  if (family === 'llama' && c.mlp_bias) biases.push(...MLP_PROJECTIONS);

  const config: LlamaConfig = {
    vocab_size: c.vocab_size,
    hidden_size: c.hidden_size,
    intermediate_size: c.intermediate_size,
    num_hidden_layers: c.num_hidden_layers,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rope_theta: ropeTheta,
    ...(ropeScaling ? { rope_scaling: ropeScaling } : {}),
    rms_norm_eps: c.rms_norm_eps ?? DEFAULT_RMS_NORM_EPS,
    max_position_embeddings: maxPositions,
    tie_word_embeddings: c.tie_word_embeddings ?? false,
    bos_token_id: c.bos_token_id ?? null,
    eos_token_id: c.eos_token_id ?? null,
    ...(c.pad_token_id !== undefined ? { pad_token_id: c.pad_token_id } : {}),
  };
  const configJson: Record<string, unknown> = {
    ...(raw as Record<string, unknown>),
    architectures: [architecture],
    num_key_value_heads: kvHeads,
    head_dim: headDim,
    rope_theta: ropeTheta,
    rope_scaling: ropeScaling,
    rms_norm_eps: config.rms_norm_eps,
    max_position_embeddings: maxPositions,
    tie_word_embeddings: config.tie_word_embeddings,
  };
  return { architecture, family, config, biases, configJson };
}

function malformed(path: string, why: string): ImportError {
  return new ImportError('KVF_IMPORT_MALFORMED', `${path}: ${why}`);
}

function architectureName(raw: unknown, path: string): string {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw malformed(path, 'config.json is not a JSON object');
  const r = raw as { architectures?: unknown; model_type?: unknown };
  if (Array.isArray(r.architectures) && typeof r.architectures[0] === 'string') {
    if (r.architectures.length > 1) throw malformed(path, `architectures lists ${r.architectures.join(', ')}; a checkpoint has one`);
    return r.architectures[0];
  }
  if (typeof r.model_type === 'string') return MODEL_TYPES[r.model_type] ?? `model_type "${r.model_type}"`;
  throw malformed(path, 'config.json names no architecture (neither "architectures" nor "model_type")');
}

const LLAMA3_FIELDS = ['factor', 'low_freq_factor', 'high_freq_factor', 'original_max_position_embeddings'] as const;

/** null for plain RoPE; llama3 scaling with its four numbers; anything else refused. */
function readRopeScaling(scaling: Record<string, unknown> | null, field: string, path: string): RopeScaling | null {
  if (!scaling) return null;
  const type = scaling.rope_type ?? scaling.type ?? 'default';
  if (type === 'default') return null;
  if (type !== 'llama3') {
    throw new ImportError(
      'KVF_IMPORT_UNSUPPORTED',
      `${path}: ${field} type ${JSON.stringify(type)} is not supported; models import implements plain RoPE (no ${field}, or type "default") and type "llama3" (Llama 3.1, 3.2)`,
    );
  }
  const missing = LLAMA3_FIELDS.filter((k) => typeof scaling[k] !== 'number' || !Number.isFinite(scaling[k]));
  if (missing.length) throw malformed(path, `${field} type "llama3" needs numbers ${LLAMA3_FIELDS.join(', ')}; missing or not a number: ${missing.join(', ')}`);
  const n = (k: (typeof LLAMA3_FIELDS)[number]) => scaling[k] as number;
  if (n('high_freq_factor') <= n('low_freq_factor')) {
    throw malformed(path, `${field} high_freq_factor ${n('high_freq_factor')} must exceed low_freq_factor ${n('low_freq_factor')}`);
  }
  return {
    rope_type: 'llama3',
    factor: n('factor'),
    low_freq_factor: n('low_freq_factor'),
    high_freq_factor: n('high_freq_factor'),
    original_max_position_embeddings: n('original_max_position_embeddings'),
  };
}
