/**
 * A Hugging Face checkpoint folder, opened for import:
 *
 *   config.json  [generation_config.json]  tokenizer.json  [tokenizer_config.json]  [chat_template.jinja]
 *   model.safetensors | model-0000N-of-0000M.safetensors + model.safetensors.index.json
 *
 * `openCheckpoint` does every check that needs no weight data — the architecture, every tensor's
 * name, shape and dtype against the config, the tokenizer's presence — so a checkpoint that cannot
 * be imported is refused before anything is written. Tensors are then read one at a time.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { WeightLookup, WeightTensor } from '../llama-spec.ts';
import { ATTENTION_PROJECTIONS, type Architecture, MLP_PROJECTIONS, readArchitecture } from './architecture.ts';
import { ImportError } from './errors.ts';
import { DTYPE_BYTES, FLOAT_DTYPES, SafetensorsFile, type TensorEntry } from './safetensors.ts';

const LAYOUT =
  'expected the Hugging Face layout: config.json, model.safetensors (or model-0000N-of-0000M.safetensors with model.safetensors.index.json), tokenizer.json';

/** Checkpoint tensors the graph has no use for and transformers ignores too. */
const IGNORED = /(^|\.)rotary_emb\.inv_freq$/;

/** How many unexpected tensor names a refusal lists. */
const NAMES_SHOWN = 5;

export interface CheckpointTensor {
  readonly file: SafetensorsFile;
  readonly entry: TensorEntry;
}

export interface Checkpoint {
  readonly dir: string;
  readonly arch: Architecture;
  /** The tensors the graph reads, by name, each with the file that holds it. */
  readonly tensors: ReadonlyMap<string, CheckpointTensor>;
  /** Weight files, relative to dir. */
  readonly weightFiles: readonly string[];
  /** The parsed tokenizer files and generation config (absent files are null). */
  readonly tokenizerJson: string;
  readonly tokenizerConfig: Record<string, unknown> | null;
  readonly chatTemplate: string | null;
  readonly generationConfig: Record<string, unknown> | null;
  close(): void;
}

/** Opens and checks a checkpoint folder; throws an `ImportError` naming the file and what to do. */
export function openCheckpoint(path: string): Checkpoint {
  const dir = resolve(path);
  if (!statSync(dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new ImportError('KVF_IMPORT_NOT_FOUND', `checkpoint folder ${dir} does not exist or is not a directory (${LAYOUT})`);
  }
  const configPath = join(dir, 'config.json');
  const arch = readArchitecture(readJson(configPath, true), configPath);
  const tokenizerPath = join(dir, 'tokenizer.json');
  if (!existsSync(tokenizerPath)) {
    const sentencePiece = existsSync(join(dir, 'tokenizer.model'));
    throw new ImportError(
      'KVF_IMPORT_NOT_FOUND',
      `checkpoint folder ${dir} has no tokenizer.json${sentencePiece ? ' (only the SentencePiece tokenizer.model)' : ''}: write the fast tokenizer with transformers, AutoTokenizer.from_pretrained(dir).save_pretrained(dir), then import again`,
    );
  }
  const tokenizerJson = readFileSync(tokenizerPath, 'utf8');
  try {
    JSON.parse(tokenizerJson);
  } catch (err) {
    throw new ImportError('KVF_IMPORT_MALFORMED', `${tokenizerPath} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const tokenizerConfig = readJson(join(dir, 'tokenizer_config.json'), false) as Record<string, unknown> | null;
  const generationConfig = readJson(join(dir, 'generation_config.json'), false) as Record<string, unknown> | null;
  const chatTemplate = readChatTemplate(dir);

  const { files, names } = weightFiles(dir);
  const opened = new Map<string, SafetensorsFile>();
  try {
    for (const f of new Set(names.values())) opened.set(f, SafetensorsFile.open(join(dir, f)));
    const found = new Map<string, CheckpointTensor>();
    for (const [name, f] of names) {
      const file = opened.get(f) as SafetensorsFile;
      const entry = file.tensors.get(name);
      if (!entry) throw new ImportError('KVF_IMPORT_MALFORMED', `model.safetensors.index.json maps ${name} to ${f}, which has no such tensor`);
      found.set(name, { file, entry });
    }
    const tensors = checkTensors(arch, found, dir);
    return {
      dir,
      arch,
      tensors,
      weightFiles: files,
      tokenizerJson,
      tokenizerConfig,
      chatTemplate,
      generationConfig,
      close: () => {
        for (const f of opened.values()) f.close();
      },
    };
  } catch (err) {
    for (const f of opened.values()) f.close();
    throw err;
  }
}

/** The weight files and, for each tensor name, the file that holds it. */
function weightFiles(dir: string): { files: string[]; names: Map<string, string> } {
  const entries = readdirSync(dir);
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (entries.includes('model.safetensors.index.json')) {
    const index = readJson(indexPath, true) as { weight_map?: unknown };
    const map = index.weight_map;
    if (!map || typeof map !== 'object' || Array.isArray(map) || !Object.values(map).every((f) => typeof f === 'string')) {
      throw new ImportError('KVF_IMPORT_MALFORMED', `${indexPath} has no weight_map of tensor names to file names`);
    }
    const names = new Map(Object.entries(map as Record<string, string>));
    const files = [...new Set(names.values())].sort();
    const absent = files.filter((f) => !entries.includes(f));
    if (absent.length) throw new ImportError('KVF_IMPORT_NOT_FOUND', `${indexPath} names ${absent.join(', ')}, absent from ${dir}`);
    return { files, names };
  }
  if (entries.includes('model.safetensors')) {
    const file = SafetensorsFile.open(join(dir, 'model.safetensors'));
    const names = new Map([...file.tensors.keys()].map((n) => [n, 'model.safetensors']));
    file.close();
    return { files: ['model.safetensors'], names };
  }
  const shards = entries.filter((f) => /^model-\d+-of-\d+\.safetensors$/.test(f));
  if (shards.length) {
    throw new ImportError('KVF_IMPORT_MALFORMED', `checkpoint folder ${dir} has sharded weights (${shards.sort()[0]}, ...) but no model.safetensors.index.json to map tensors to shards`);
  }
  if (entries.some((f) => /^pytorch_model.*\.bin$/.test(f) || f.endsWith('.pth') || f.endsWith('.pt'))) {
    throw new ImportError(
      'KVF_IMPORT_UNSUPPORTED',
      `checkpoint folder ${dir} holds PyTorch pickle weights only; models import reads safetensors: in Python, AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir) writes model.safetensors`,
    );
  }
  throw new ImportError('KVF_IMPORT_NOT_FOUND', `checkpoint folder ${dir} has no weights (${LAYOUT})`);
}

/**
 * Checks every tensor the graph needs against the config (name, shape, dtype) and refuses
 * tensors it would not read (a variant of the architecture the builder does not implement).
 */
function checkTensors(arch: Architecture, found: ReadonlyMap<string, CheckpointTensor>, dir: string): Map<string, CheckpointTensor> {
  const c = arch.config;
  const H = c.hidden_size;
  const D = c.head_dim;
  const width: Record<string, [number, number]> = {
    'self_attn.q_proj': [c.num_attention_heads * D, H],
    'self_attn.k_proj': [c.num_key_value_heads * D, H],
    'self_attn.v_proj': [c.num_key_value_heads * D, H],
    'self_attn.o_proj': [H, c.num_attention_heads * D],
    'mlp.gate_proj': [c.intermediate_size, H],
    'mlp.up_proj': [c.intermediate_size, H],
    'mlp.down_proj': [H, c.intermediate_size],
  };
  const expected = new Map<string, readonly number[]>([['model.embed_tokens.weight', [c.vocab_size, H]]]);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    expected.set(`${p}.input_layernorm.weight`, [H]);
    expected.set(`${p}.post_attention_layernorm.weight`, [H]);
    for (const proj of [...ATTENTION_PROJECTIONS, ...MLP_PROJECTIONS]) {
      const shape = width[proj] as [number, number];
      expected.set(`${p}.${proj}.weight`, shape);
      if (arch.biases.includes(proj)) expected.set(`${p}.${proj}.bias`, [shape[0]]);
    }
  }
  expected.set('model.norm.weight', [H]);
  if (!c.tie_word_embeddings) expected.set('lm_head.weight', [c.vocab_size, H]);

  const tensors = new Map<string, CheckpointTensor>();
  for (const [name, shape] of expected) {
    const t = found.get(name);
    if (!t) {
      const hint = name === 'lm_head.weight' ? ' (config.json has tie_word_embeddings false)' : name.endsWith('.bias') ? ` (a ${arch.architecture} with this config has biases)` : '';
      throw new ImportError('KVF_IMPORT_MALFORMED', `checkpoint ${dir} lacks tensor ${name}${hint}`);
    }
    if (t.entry.shape.length !== shape.length || t.entry.shape.some((n, i) => n !== shape[i])) {
      throw new ImportError('KVF_IMPORT_MALFORMED', `checkpoint ${dir}: tensor ${name} in ${t.file.path} has shape [${t.entry.shape}], config.json implies [${shape}]`);
    }
    if (!(FLOAT_DTYPES as readonly string[]).includes(t.entry.dtype)) {
      throw new ImportError('KVF_IMPORT_UNSUPPORTED', `checkpoint ${dir}: tensor ${name} in ${t.file.path} is ${t.entry.dtype}; models import reads ${FLOAT_DTYPES.join(', ')} weights`);
    }
    tensors.set(name, t);
  }
  const tiedHead = (name: string) => name === 'lm_head.weight' && c.tie_word_embeddings;
  const extra = [...found.keys()].filter((n) => !expected.has(n) && !IGNORED.test(n) && !tiedHead(n));
  if (extra.length) {
    const shown = extra.slice(0, NAMES_SHOWN).join(', ') + (extra.length > NAMES_SHOWN ? `, and ${extra.length - NAMES_SHOWN} more` : '');
    throw new ImportError(
      'KVF_IMPORT_UNSUPPORTED',
      `checkpoint ${dir} has tensors a ${arch.architecture} with this config.json does not use: ${shown}; it is a variant the builder does not implement (check config.json's architectures, attention_bias and mlp_bias)`,
    );
  }
  return tensors;
}

/**
 * The checkpoint's tensors as a `WeightLookup`: each `get` reads one tensor from its file as
 * float32 into one buffer reused from tensor to tensor (sized to the largest), so the graph
 * builder holds one tensor at a time and no tensor's memory is left for the collector. A tensor's
 * data is valid until the next `get`. Names the checkpoint does not have (a bias this family
 * lacks) give undefined.
 */
export function checkpointWeights(checkpoint: Checkpoint, onRead?: (name: string, entry: TensorEntry) => void): WeightLookup {
  let buffer = new Float32Array(0);
  return {
    get(name: string): WeightTensor | undefined {
      const t = checkpoint.tensors.get(name);
      if (!t) return undefined;
      const count = t.entry.byteLength / (DTYPE_BYTES[t.entry.dtype] as number);
      if (buffer.length < count) buffer = new Float32Array(count);
      const data = t.file.readFloat32(name, buffer);
      onRead?.(name, t.entry);
      return { shape: t.entry.shape, data };
    },
  };
}

function readJson(path: string, required: boolean): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ImportError('KVF_IMPORT_NOT_FOUND', `cannot read ${path} (${LAYOUT}): ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new ImportError('KVF_IMPORT_MALFORMED', `${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** A chat template kept beside tokenizer_config.json (newer checkpoints): chat_template.jinja or chat_template.json. */
function readChatTemplate(dir: string): string | null {
  const jinja = join(dir, 'chat_template.jinja');
  if (existsSync(jinja)) return readFileSync(jinja, 'utf8');
  const json = readJson(join(dir, 'chat_template.json'), false) as { chat_template?: unknown } | null;
  return typeof json?.chat_template === 'string' ? json.chat_template : null;
}
