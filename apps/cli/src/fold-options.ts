/** Options shared by the commands that fold: policy, KV storage, checkpoints. */
import type { PolicySpec } from '@kvfold/fold-core';
import type { PolicyChoice } from '@kvfold/runner';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { CliError } from './cli-error.ts';
import { nonNegativeInt, positiveInt } from './options.ts';

export interface PolicyFlags {
  policy: 'full' | 'streaming';
  sink?: number;
  window?: number;
  kv: 'f32' | 'int8';
}

/** StreamingLLM's default number of attention-sink tokens. */
const DEFAULT_SINK = 4;

export function addPolicyOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--policy <policy>', 'what the KV accumulator keeps').choices(['full', 'streaming']).default('full'))
    .option('--sink <n>', `streaming: attention-sink tokens kept (default ${DEFAULT_SINK})`, nonNegativeInt('--sink'))
    .option('--window <n>', 'streaming: most recent tokens kept', positiveInt('--window'))
    .addOption(new Option('--kv <dtype>', 'KV storage: as the model produces it, or int8 with per-channel scales').choices(['f32', 'int8']).default('f32'));
}

export function policyChoice(flags: PolicyFlags): PolicyChoice {
  let spec: PolicySpec;
  if (flags.policy === 'streaming') {
    if (flags.window === undefined) throw new CliError('--policy streaming needs --window N (the most recent tokens to keep)');
    spec = { kind: 'streaming', sink: flags.sink ?? DEFAULT_SINK, window: flags.window };
  } else {
    if (flags.window !== undefined || flags.sink !== undefined) throw new CliError('--sink and --window go with --policy streaming');
    spec = { kind: 'full' };
  }
  return { spec, kv: flags.kv };
}

export function parseCodec(value: string): 'f32' | 'f16' | 'int8' {
  if (value === 'f32' || value === 'f16' || value === 'int8') return value;
  throw new InvalidArgumentError(`--kv-codec must be f32, f16 or int8, got "${value}".`);
}
