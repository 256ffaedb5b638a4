/** Options shared by the commands that fold: policy, KV storage, checkpoints, generation. */
import { checkSampling, type PolicySpec, type SamplingOptions } from '@kvfold/fold-core';
import type { PolicyChoice } from '@kvfold/runner';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { CliError } from './cli-error.ts';
import { collect, nonNegativeInt, positiveInt } from './options.ts';

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

export interface GenerationFlags {
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop: string[];
}

/** Sampled answers and stop strings; greedy unless --temperature is given. */
export function addGenerationOptions(cmd: Command): Command {
  return cmd
    .option('--temperature <t>', 'sample answers at this temperature (> 0) instead of taking the most likely token', number('--temperature'))
    .option('--top-k <k>', 'sampling: keep the k most likely tokens', nonNegativeInt('--top-k'))
    .option('--top-p <p>', 'sampling: keep the smallest set of tokens whose probability reaches p', number('--top-p'))
    .option('--seed <n>', 'sampling: the seed of question 1 (question i uses seed + i - 1); the same seed gives the same answers', integer('--seed'))
    .option('--stop <text>', 'end an answer before this text (repeatable)', collect, []);
}

export function generationChoice(flags: GenerationFlags): { sampling?: SamplingOptions; stopStrings: string[] } {
  if (flags.temperature === undefined) {
    const stray = (['topK', 'topP', 'seed'] as const).filter((k) => flags[k] !== undefined);
    if (stray.length) throw new CliError(`${stray.map((k) => `--${k === 'topK' ? 'top-k' : k === 'topP' ? 'top-p' : 'seed'}`).join(', ')} sample answers: add --temperature T (> 0)`);
    return { stopStrings: flags.stop };
  }
  const sampling: SamplingOptions = {
    temperature: flags.temperature,
    seed: flags.seed ?? 0,
    ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
    ...(flags.topP !== undefined ? { topP: flags.topP } : {}),
  };
  try {
    checkSampling(sampling);
  } catch (err) {
    throw new CliError(`--${(err as Error).message}`);
  }
  return { sampling, stopStrings: flags.stop };
}

function number(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number, got "${value}".`);
    return n;
  };
}

function integer(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${value}".`);
    return n;
  };
}
