/**
 * The fold settings a user picks (policy, KV storage, checkpoint codec), turned into fold-core
 * policies for a loaded model, with the string that identifies them in checkpoint fingerprints.
 */
import { createPolicy, type KvPolicy, type KvStorage, type PolicySpec } from '@kvfold/fold-core';
import { type LoadedModel, ropeInverseFrequencies } from '@kvfold/onnx';

export interface PolicyChoice {
  readonly spec: PolicySpec;
  readonly kv: KvStorage;
}

export interface ResolvedPolicy {
  readonly policy: KvPolicy;
  /** Stable description, e.g. `full`, `full+int8`, `streaming(sink=4,window=1024)`. */
  readonly name: string;
}

export function resolvePolicy(model: LoadedModel, choice: PolicyChoice): ResolvedPolicy {
  const invFreq = choice.spec.kind === 'streaming' ? ropeInverseFrequencies(model.folder) : undefined;
  const policy = createPolicy(choice.spec, choice.kv, invFreq ? { invFreq } : {});
  return { policy, name: policy.name };
}
