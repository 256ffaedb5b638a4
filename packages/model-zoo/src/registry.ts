/** The models `kvfold models build <name>` knows. */
import type { LlamaSpec } from './llama-spec.ts';
import { kvHeavySpec } from './kv-heavy.ts';
import { recallSpec } from './recall/index.ts';
import { tinyLlamaSpec } from './tiny-llama.ts';

export const MODEL_NAMES = ['tiny-llama', 'recall', 'kv-heavy'] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelBuildOptions {
  /** Seed of random weights (tiny-llama, kv-heavy); the recall model's weights are constructed and take none. */
  readonly seed?: number;
}

export function modelSpec(name: string, options: ModelBuildOptions = {}): LlamaSpec {
  switch (name) {
    case 'tiny-llama':
      return tinyLlamaSpec(options.seed === undefined ? {} : { seed: options.seed });
    case 'recall':
      return recallSpec();
    case 'kv-heavy':
      return kvHeavySpec(options.seed === undefined ? {} : { seed: options.seed });
    default:
      throw new Error(`unknown model "${name}": known models are ${MODEL_NAMES.join(', ')}`);
  }
}
