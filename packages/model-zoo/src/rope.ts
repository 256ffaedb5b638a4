/** RoPE inverse frequencies, plain or llama3-scaled: the project's one implementation is fold-core's. */
export { type Llama3RopeScaling, type RopeScaling, ropeFrequencies } from '@kvfold/fold-core';
