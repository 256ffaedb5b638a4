/**
 * The KV policy a user picks, turned into a fold-core policy for a loaded model, with the string
 * that identifies it in checkpoint fingerprints. (The width the cache is held at is the model
 * session's, chosen when it is loaded: `kvDtype`.)
 */
import { createPolicy, type KvPolicy, type PolicySpec } from '@kvfold/fold-core';
import { type LoadedModel, ropeInverseFrequencies } from '@kvfold/onnx';

export interface PolicyChoice {
  readonly spec: PolicySpec;
}

export interface ResolvedPolicy {
  readonly policy: KvPolicy;
  /** Stable description, e.g. `full`, `streaming(sink=4,window=1024)`. */
  readonly name: string;
}

export function resolvePolicy(model: LoadedModel, choice: PolicyChoice): ResolvedPolicy {
  const invFreq = choice.spec.kind === 'streaming' ? ropeInverseFrequencies(model.folder) : undefined;
  const policy = createPolicy(choice.spec, invFreq ? { invFreq } : {});
  return { policy, name: policy.name };
}
