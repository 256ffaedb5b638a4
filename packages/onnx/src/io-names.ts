/**
 * The decoder contract read off a graph's inputs and outputs: which names carry the tokens, the
 * mask, the positions, each layer's past and present, and the logits; and the cache's shape.
 * Names and dtype come from the graph; shapes the graph leaves symbolic come from config.json.
 */
import type { ModelLayout } from '@kvfold/fold-core';
import { ModelError } from './errors.ts';

export interface IoMeta {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

export interface IoNames {
  readonly inputIds: string;
  readonly attentionMask: string | null;
  readonly positionIds: string | null;
  readonly pastKeyValues: readonly { key: string; value: string }[]; // [layers]
  readonly presents: readonly { key: string; value: string }[]; // [layers]
  readonly logits: string;
}

/** The config.json fields that fill in symbolic shapes. */
export interface ShapeConfig {
  readonly vocab_size: number;
  readonly hidden_size: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads?: number | undefined;
  readonly head_dim?: number | null | undefined;
  readonly max_position_embeddings: number;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;
const PRESENT = /^present\.(\d+)\.(key|value)$/;

/** Maps a graph's I/O onto the decoder contract, or explains why it is not one. */
export function discover(onnxPath: string, config: ShapeConfig, inputs: readonly IoMeta[], outputs: readonly IoMeta[]): { names: IoNames; layout: ModelLayout } {
  const byName = new Map(inputs.map((m) => [m.name, m]));
  const notDecoder = (why: string) =>
    new ModelError(
      'KVF_MODEL_NOT_A_DECODER',
      `${onnxPath} is not a decoder with past_key_values: ${why}. Inputs: [${inputs.map((m) => m.name).join(', ')}]; outputs: [${outputs.map((m) => m.name).join(', ')}]. Export it with optimum's text-generation-with-past task.`,
    );
  const pairs = (metas: readonly IoMeta[], re: RegExp, what: string) => {
    const found: { key: string; value: string }[] = [];
    for (const m of metas) {
      const hit = re.exec(m.name);
      if (!hit) continue;
      const i = Number(hit[1]);
      found[i] ??= { key: '', value: '' };
      (found[i] as { key: string; value: string })[hit[2] as 'key' | 'value'] = m.name;
    }
    for (let i = 0; i < found.length; i++) {
      if (!found[i]?.key || !found[i]?.value) throw notDecoder(`${what} of layer ${i} lacks its key or value`);
    }
    return found;
  };
  if (!byName.has('input_ids')) throw notDecoder('no input_ids input');
  const past = pairs(inputs, PAST, 'past_key_values');
  const presents = pairs(outputs, PRESENT, 'present');
  if (past.length === 0) throw notDecoder('no past_key_values.{i}.key|value inputs');
  if (presents.length !== past.length) throw notDecoder(`${past.length} past layers but ${presents.length} present layers`);
  const logits = outputs.find((m) => m.name === 'logits');
  if (!logits) throw notDecoder('no logits output');
  const extra = inputs.filter((m) => !PAST.test(m.name) && !['input_ids', 'attention_mask', 'position_ids'].includes(m.name));
  if (extra.length) throw notDecoder(`unsupported inputs ${extra.map((m) => m.name).join(', ')}`);

  const keyMeta = byName.get(past[0]?.key ?? '') as IoMeta;
  const dtype = keyMeta.type === 'float32' ? 'float32' : keyMeta.type === 'float16' ? 'float16' : null;
  if (!dtype) throw notDecoder(`past_key_values are ${keyMeta.type}; float32 and float16 caches are supported`);
  const cfg = config;
  const fixed = (d: number | string | undefined, fallback: number) => (typeof d === 'number' && d > 0 ? d : fallback);
  const kvHeads = fixed(keyMeta.shape[1], cfg.num_key_value_heads ?? cfg.num_attention_heads);
  const headDim = fixed(keyMeta.shape[3], cfg.head_dim ?? cfg.hidden_size / cfg.num_attention_heads);
  const vocabSize = fixed(logits.shape[2], cfg.vocab_size);
  return {
    names: {
      inputIds: 'input_ids',
      attentionMask: byName.has('attention_mask') ? 'attention_mask' : null,
      positionIds: byName.has('position_ids') ? 'position_ids' : null,
      pastKeyValues: past,
      presents,
      logits: 'logits',
    },
    layout: { layers: past.length, kvHeads, headDim, dtype, maxPositions: cfg.max_position_embeddings, vocabSize },
  };
}
