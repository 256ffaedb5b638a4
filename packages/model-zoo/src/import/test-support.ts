/**
 * For the import tests: small seeded specs with each family's quirks, weights rounded to a
 * checkpoint dtype, and a plain onnxruntime-node fold of a model folder (chunk by chunk through
 * past_key_values) that returns every position's logits and greedy continuations.
 */
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { byteLevelTokenizer } from '../byte-tokenizer.ts';
import { roundToBfloat16, roundToFloat16 } from '@kvfold/fold-core';
import type { LlamaConfig, LlamaSpec, WeightTensor } from '../llama-spec.ts';
import { randomLlamaWeights } from '../random-llama.ts';
import type { RopeScaling } from '../rope.ts';
import { SeededRandom } from '../rng.ts';
import type { Family } from './architecture.ts';

export interface FamilySpecOptions {
  readonly family: Family;
  readonly tied?: boolean;
  readonly seed?: number;
  readonly ropeScaling?: RopeScaling;
  /** Biases on q/k/v (Qwen2's), and on o and the MLP too (Llama's attention_bias + mlp_bias). */
  readonly biases?: 'none' | 'qkv' | 'all';
}

/**
 * Llama 3.1's scaling shrunk to a 16-dim head: with rope_theta 10000 the pairs' wavelengths run
 * 6 to 19869 tokens, so an original context of 512 (low 1, high 4) keeps pairs 0-2, interpolates
 * pair 3 and divides pairs 4-7 by the factor: every branch of the rule is used.
 */
export const SMALL_LLAMA3_SCALING: RopeScaling = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 512 };

/** A 2-layer model (hidden 64, 4 query / 2 KV heads of 16) over the byte-level vocabulary. */
export function familySpec(options: FamilySpecOptions): LlamaSpec {
  const tok = byteLevelTokenizer();
  const config: LlamaConfig = {
    vocab_size: tok.vocabSize,
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    head_dim: 16,
    rope_theta: options.family === 'llama' ? 10000 : 1000000,
    ...(options.ropeScaling ? { rope_scaling: options.ropeScaling } : {}),
    rms_norm_eps: options.family === 'llama' ? 1e-5 : 1e-6,
    max_position_embeddings: 4096,
    tie_word_embeddings: options.tied ?? false,
    bos_token_id: tok.bosId,
    eos_token_id: tok.eosId,
  };
  const seed = options.seed ?? 11;
  const weights = randomLlamaWeights(config, seed, { embeddingStd: 0.25 });
  const biases = options.biases ?? (options.family === 'qwen2' ? 'qkv' : 'none');
  if (biases !== 'none') {
    const rng = new SeededRandom(seed + 1);
    const D = config.head_dim;
    const widths: [string, number][] = [
      ['self_attn.q_proj', config.num_attention_heads * D],
      ['self_attn.k_proj', config.num_key_value_heads * D],
      ['self_attn.v_proj', config.num_key_value_heads * D],
    ];
    if (biases === 'all') widths.push(['self_attn.o_proj', config.hidden_size], ['mlp.gate_proj', config.intermediate_size], ['mlp.up_proj', config.intermediate_size], ['mlp.down_proj', config.hidden_size]);
    for (let i = 0; i < config.num_hidden_layers; i++) {
      for (const [proj, n] of widths) weights.set(`model.layers.${i}.${proj}.bias`, { shape: [n], data: rng.normals(n, 0.5) });
    }
  }
  return {
    name: `${options.family}-test`,
    config,
    weights,
    tokenizer: tok.tokenizer,
    tokenizerConfig: tok.tokenizerConfig,
    generationConfig: { bos_token_id: tok.bosId, eos_token_id: [tok.eosId], do_sample: false },
    description: `a seeded ${options.family} test model`,
  };
}

/** The spec with every weight rounded to bfloat16 or float16, as a checkpoint in that dtype holds it. */
export function roundedSpec(spec: LlamaSpec, dtype: 'BF16' | 'F16'): LlamaSpec {
  const round = dtype === 'BF16' ? roundToBfloat16 : roundToFloat16;
  const weights = new Map<string, WeightTensor>();
  for (const [name, t] of spec.weights) weights.set(name, { shape: t.shape, data: t.data.map(round) });
  return { ...spec, weights };
}

/** A deterministic prompt of `n` byte tokens after BOS. */
export function promptIds(n: number, vocab = 256): number[] {
  return [256, ...Array.from({ length: n }, (_, i) => (i * 7919 + 13) % vocab)];
}

export interface FoldRun {
  /** Logits of every position, [tokens][vocab]. */
  readonly logits: Float32Array[];
  /** Greedy continuation after the prompt. */
  readonly greedy: number[];
}

/**
 * Folds `ids` through the folder's ONNX model `chunk` tokens at a time (the whole prompt at once
 * when chunk >= ids.length), then decodes `newTokens` greedily one token a step.
 */
export async function foldFolder(dir: string, ids: readonly number[], chunk: number, newTokens: number): Promise<FoldRun> {
  const session = await ort.InferenceSession.create(join(dir, 'onnx', 'model.onnx'));
  try {
    const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
    const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
    const [, kvHeads, , headDim] = (meta?.isTensor ? meta.shape : []) as number[];
    let past: Record<string, ort.Tensor> = Object.fromEntries(pastNames.map((n) => [n, new ort.Tensor('float32', new Float32Array(0), [1, kvHeads as number, 0, headDim as number])]));
    let length = 0;
    const step = async (tokens: readonly number[]): Promise<Float32Array[]> => {
      const n = tokens.length;
      const out = await session.run({
        input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens, BigInt), [1, n]),
        attention_mask: new ort.Tensor('int64', new BigInt64Array(length + n).fill(1n), [1, length + n]),
        position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(length + i)), [1, n]),
        ...past,
      });
      length += n;
      past = Object.fromEntries(pastNames.map((p) => [p, out[p.replace('past_key_values.', 'present.')] as ort.Tensor]));
      const logits = (out.logits as ort.Tensor).data as Float32Array;
      const vocab = logits.length / n;
      return Array.from({ length: n }, (_, i) => logits.slice(i * vocab, (i + 1) * vocab));
    };
    const logits: Float32Array[] = [];
    for (let start = 0; start < ids.length; start += chunk) logits.push(...(await step(ids.slice(start, start + chunk))));
    const greedy: number[] = [];
    let last = logits[logits.length - 1] as Float32Array;
    for (let i = 0; i < newTokens; i++) {
      const next = argmaxOf(last);
      greedy.push(next);
      last = (await step([next]))[0] as Float32Array;
    }
    return { logits, greedy };
  } finally {
    await session.release();
  }
}

function argmaxOf(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if ((values[i] as number) > (values[best] as number)) best = i;
  return best;
}

/** Largest |a - b| over two lists of logit rows. */
export function maxAbsDiff(a: readonly ArrayLike<number>[], b: readonly ArrayLike<number>[]): number {
  if (a.length !== b.length) throw new RangeError(`${a.length} rows against ${b.length}`);
  let worst = 0;
  a.forEach((row, t) => {
    const other = b[t] as ArrayLike<number>;
    for (let i = 0; i < row.length; i++) worst = Math.max(worst, Math.abs((row[i] as number) - (other[i] as number)));
  });
  return worst;
}
