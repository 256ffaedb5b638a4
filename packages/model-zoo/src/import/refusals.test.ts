/**
 * What `models import` refuses, and that it refuses before writing anything: each checkpoint here
 * is a valid one with one thing changed, and each refusal is checked by its code and message.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { type Family, readArchitecture } from './architecture.ts';
import { importCheckpoint } from './import-checkpoint.ts';
import { type CheckpointContents, specContents, writeCheckpoint } from './write-checkpoint.ts';
import { SMALL_LLAMA3_SCALING, familySpec } from './test-support.ts';

const root = mkdtempSync(join(tmpdir(), 'kvfold-import-refusals-'));
after(() => rmSync(root, { recursive: true, force: true }));

let count = 0;

interface Setup {
  readonly family?: Family;
  readonly configOverrides?: Record<string, unknown>;
  readonly shards?: number;
  readonly contents?: (c: CheckpointContents) => CheckpointContents;
  readonly after?: (dir: string) => void;
  readonly biases?: 'none' | 'qkv';
}

function checkpoint(setup: Setup = {}): string {
  const family = setup.family ?? 'llama';
  const dir = join(root, `ckpt-${count++}`);
  const contents = specContents(familySpec({ family, ...(setup.biases ? { biases: setup.biases } : {}) }));
  writeCheckpoint(setup.contents ? setup.contents(contents) : contents, dir, { family, dtype: 'F32', ...(setup.shards ? { shards: setup.shards } : {}), ...(setup.configOverrides ? { configOverrides: setup.configOverrides } : {}) });
  setup.after?.(dir);
  return dir;
}

/** Imports `dir` expecting a refusal with `code` and a message matching `message`; the output folder must not appear. */
async function refused(dir: string, code: string, message: RegExp): Promise<void> {
  const out = join(root, `out-${count++}`);
  await assert.rejects(importCheckpoint(dir, out), (err: Error & { code?: string }) => {
    assert.equal(err.code, code, err.message);
    assert.match(err.message, message);
    return true;
  });
  assert.ok(!existsSync(out), 'nothing is written');
  assert.deepEqual(readdirSync(root).filter((f) => f.includes('.partial-')), [], 'no partial folder is left');
}

const SUPPORTED_LIST = /models import builds LlamaForCausalLM \(Llama 2, 3, 3\.1, 3\.2, TinyLlama, SmolLM\), MistralForCausalLM and Qwen2ForCausalLM; for another decoder, export it to ONNX with optimum and pass that folder to --model \(docs\/models\.md\)/;

test('another architecture is refused by name, with what is supported and what to do', async () => {
  await refused(checkpoint({ configOverrides: { architectures: ['GemmaForCausalLM'], model_type: 'gemma' } }), 'KVF_IMPORT_UNSUPPORTED', new RegExp(`config\\.json: architecture GemmaForCausalLM is not supported; ${SUPPORTED_LIST.source}`));
  await refused(checkpoint({ configOverrides: { architectures: null, model_type: 'phi3' } }), 'KVF_IMPORT_UNSUPPORTED', /architecture model_type "phi3" is not supported/);
});

test('RoPE scalings other than llama3 are refused by type; a llama3 scaling missing a number is malformed', async () => {
  await refused(checkpoint({ configOverrides: { rope_scaling: { rope_type: 'yarn', factor: 4 } } }), 'KVF_IMPORT_UNSUPPORTED', /rope_scaling type "yarn" is not supported; models import implements plain RoPE \(no rope_scaling, or type "default"\) and type "llama3" \(Llama 3\.1, 3\.2\)/);
  await refused(checkpoint({ configOverrides: { rope_scaling: { type: 'dynamic', factor: 2 } } }), 'KVF_IMPORT_UNSUPPORTED', /rope_scaling type "dynamic" is not supported/);
  await refused(
    checkpoint({ configOverrides: { rope_scaling: { rope_type: 'llama3', factor: 8 } } }),
    'KVF_IMPORT_MALFORMED',
    /rope_scaling type "llama3" needs numbers factor, low_freq_factor, high_freq_factor, original_max_position_embeddings; missing or not a number: low_freq_factor, high_freq_factor, original_max_position_embeddings/,
  );
});

test('an active sliding window is refused (Mistral by sliding_window, Qwen2 by use_sliding_window); an inactive one is accepted', async () => {
  await refused(
    checkpoint({ family: 'mistral', configOverrides: { sliding_window: 1024 } }),
    'KVF_IMPORT_UNSUPPORTED',
    /sliding-window attention is active \(sliding_window 1024 < max_position_embeddings 4096\); the graph attends to every cached token, which changes the model's answers past 1024 tokens\. models import supports MistralForCausalLM checkpoints whose sliding window is off \(sliding_window null\) or at least max_position_embeddings/,
  );
  await refused(checkpoint({ family: 'qwen2', configOverrides: { use_sliding_window: true, sliding_window: 1024 } }), 'KVF_IMPORT_UNSUPPORTED', /sliding-window attention is active \(use_sliding_window true, sliding_window 1024 < max_position_embeddings 4096\)/);
  const base = { architectures: ['MistralForCausalLM'], vocab_size: 8, hidden_size: 8, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 4096 };
  assert.equal(readArchitecture({ ...base, sliding_window: 4096 }, 'c').family, 'mistral');
  assert.equal(readArchitecture({ ...base, architectures: ['Qwen2ForCausalLM'], use_sliding_window: false, sliding_window: 1024 }, 'c').family, 'qwen2');
});

test('other activations, partial rotary and quantized checkpoints are refused by name', async () => {
  await refused(checkpoint({ configOverrides: { hidden_act: 'gelu' } }), 'KVF_IMPORT_UNSUPPORTED', /hidden_act "gelu" is not supported; the builder implements the SwiGLU MLP with silu/);
  await refused(checkpoint({ configOverrides: { partial_rotary_factor: 0.5 } }), 'KVF_IMPORT_UNSUPPORTED', /partial_rotary_factor 0\.5 is not supported/);
  await refused(checkpoint({ configOverrides: { quantization_config: { quant_method: 'gptq', bits: 4 } } }), 'KVF_IMPORT_UNSUPPORTED', /the checkpoint is quantized \(quantization_config\.quant_method "gptq"\); models import reads unquantized F32, F16 or BF16 weights/);
});

test('a missing tokenizer.json, pickle-only weights and shards without an index are refused with what to do', async () => {
  await refused(checkpoint({ after: (d) => rmSync(join(d, 'tokenizer.json')) }), 'KVF_IMPORT_NOT_FOUND', /has no tokenizer\.json: write the fast tokenizer with transformers, AutoTokenizer\.from_pretrained\(dir\)\.save_pretrained\(dir\)/);
  await refused(
    checkpoint({ after: (d) => renameSync(join(d, 'model.safetensors'), join(d, 'pytorch_model.bin')) }),
    'KVF_IMPORT_UNSUPPORTED',
    /holds PyTorch pickle weights only; models import reads safetensors: in Python, AutoModelForCausalLM\.from_pretrained\(dir\)\.save_pretrained\(dir\) writes model\.safetensors/,
  );
  await refused(checkpoint({ shards: 2, after: (d) => rmSync(join(d, 'model.safetensors.index.json')) }), 'KVF_IMPORT_MALFORMED', /has sharded weights \(model-00001-of-00002\.safetensors, \.\.\.\) but no model\.safetensors\.index\.json/);
  await refused(checkpoint({ after: (d) => rmSync(join(d, 'config.json')) }), 'KVF_IMPORT_NOT_FOUND', /cannot read .*config\.json \(expected the Hugging Face layout/);
  await refused(join(root, 'nowhere'), 'KVF_IMPORT_NOT_FOUND', /checkpoint folder .*nowhere does not exist/);
});

test('missing tensors, wrong shapes, unused tensors and integer weights are refused naming the tensor', async () => {
  const without = (name: string) => (c: CheckpointContents) => ({ ...c, tensors: c.tensors.filter((t) => t.name !== name) });
  await refused(checkpoint({ contents: without('lm_head.weight') }), 'KVF_IMPORT_MALFORMED', /lacks tensor lm_head\.weight \(config\.json has tie_word_embeddings false\)/);
  await refused(checkpoint({ family: 'qwen2', biases: 'none' }), 'KVF_IMPORT_MALFORMED', /lacks tensor model\.layers\.0\.self_attn\.q_proj\.bias \(a Qwen2ForCausalLM with this config has biases\)/);
  await refused(checkpoint({ configOverrides: { intermediate_size: 100 } }), 'KVF_IMPORT_MALFORMED', /tensor model\.layers\.0\.mlp\.gate_proj\.weight in .*model\.safetensors has shape \[96,64\], config\.json implies \[100,64\]/);
  const extra = (c: CheckpointContents) => ({ ...c, tensors: [...c.tensors, { name: 'model.layers.0.self_attn.q_norm.weight', shape: [16], values: (emit: (x: Float32Array) => void) => emit(new Float32Array(16)) }] });
  await refused(checkpoint({ contents: extra }), 'KVF_IMPORT_UNSUPPORTED', /has tensors a LlamaForCausalLM with this config\.json does not use: model\.layers\.0\.self_attn\.q_norm\.weight; it is a variant the builder does not implement/);
  // The same bytes declared I32: a header edit of equal length.
  const asInt = (d: string) => {
    const path = join(d, 'model.safetensors');
    const raw = readFileSync(path);
    const headerLength = Number(raw.readBigUInt64LE(0));
    const header = raw.subarray(8, 8 + headerLength).toString().replace('"model.norm.weight":{"dtype":"F32"', '"model.norm.weight":{"dtype":"I32"');
    raw.write(header, 8);
    writeFileSync(path, raw);
  };
  await refused(checkpoint({ after: asInt }), 'KVF_IMPORT_UNSUPPORTED', /tensor model\.norm\.weight in .* is I32; models import reads F32, F16, BF16 weights/);
});

test('an output folder that is the checkpoint or holds it is refused', async () => {
  const dir = checkpoint();
  await assert.rejects(importCheckpoint(dir, dir), /--out .* would replace the checkpoint folder/);
  await assert.rejects(importCheckpoint(dir, root), /--out .* would replace the checkpoint folder/);
  assert.ok(existsSync(join(dir, 'model.safetensors')));
});

test('transformers 5 rope_parameters are read like rope_theta + rope_scaling, and config.json states the scaling for the engine', () => {
  const base = { architectures: ['LlamaForCausalLM'], vocab_size: 8, hidden_size: 32, intermediate_size: 8, num_hidden_layers: 1, num_attention_heads: 2, max_position_embeddings: 4096 };
  const v4 = readArchitecture({ ...base, rope_theta: 500000, rope_scaling: SMALL_LLAMA3_SCALING }, 'c');
  const v5 = readArchitecture({ ...base, rope_parameters: { rope_theta: 500000, ...SMALL_LLAMA3_SCALING } }, 'c');
  assert.deepEqual(v5.config, v4.config);
  assert.deepEqual(v5.configJson.rope_scaling, SMALL_LLAMA3_SCALING);
  assert.equal(v4.config.head_dim, 16, 'head_dim derived as hidden_size / num_attention_heads');
  assert.equal(readArchitecture({ ...base, head_dim: 8 }, 'c').config.head_dim, 8, 'head_dim given');
  assert.equal(readArchitecture({ ...base, rope_scaling: { rope_type: 'default' } }, 'c').config.rope_scaling, undefined);
});
