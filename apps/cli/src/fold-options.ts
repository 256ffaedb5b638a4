/**
 * The batch settings as flags. The zod `BatchSpec` (packages/contract/src/batch-spec.ts) is the one
 * definition of what a batch can be asked; `SETTING_FLAGS` gives each of its fields the flags that
 * set it (the `satisfies` clause stops a field from existing without them), and `addSettingOptions`
 * registers those flags, with the schema's defaults (its plain constants, `@kvfold/contract/defaults`, so
 * `kvfold --help` starts without zod), on `fold`, `run` and `enqueue` alike. What the flags say
 * becomes a spec through `settingsFromFlags`, and the schema checks it.
 */
import type { BatchSpecInput, FoldPolicy, KvStorage, Sampling } from '@kvfold/contract';
import { DEFAULT_CHECKPOINT_EVERY, DEFAULT_CHUNK_SIZE, DEFAULT_GROUPING, DEFAULT_KV, DEFAULT_MAX_BATCH_SIZE, DEFAULT_MAX_NEW_TOKENS, DEFAULT_MAX_TOKENS_PER_DOCUMENT, DEFAULT_STREAMING_SINK, GROUPINGS, KV_CODECS, KV_STORAGES } from '@kvfold/contract/defaults';
import type { PolicyChoice } from '@kvfold/runner';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { CliError } from './cli-error.ts';
import { collect, nonNegativeInt, positiveInt } from './options.ts';

export type SettingField = Exclude<keyof BatchSpecInput, 'corpus'>;

/** Every field of a batch spec, and the flags that set it. */
export const SETTING_FLAGS = {
  model: ['--model'],
  queries: ['--ask'],
  chunkSize: ['--chunk-size'],
  checkpointEvery: ['--checkpoint-every'],
  policy: ['--policy', '--sink', '--window'],
  kv: ['--kv'],
  kvCodec: ['--kv-codec'],
  maxNewTokens: ['--max-new-tokens'],
  maxBatchSize: ['--max-batch-size'],
  sampling: ['--temperature', '--top-k', '--top-p', '--seed'],
  stop: ['--stop'],
  maxTokensPerDocument: ['--max-tokens-per-document'],
  chatTemplate: ['--chat'],
  keepFinalState: ['--keep-final'],
  grouping: ['--group'],
} as const satisfies Record<SettingField, readonly string[]>;

/** The fields `kvfold fold` sets its own way (one document, no batch), and how. */
export const FOLD_OWN_FIELDS = {
  maxTokensPerDocument: 'one document: the model’s positions bound it (--beyond-max-positions)',
  keepFinalState: '--reuse keeps the final state and answers from it',
  grouping: 'one document: nothing to group',
} as const satisfies Partial<Record<SettingField, string>>;

/** The fields of a command: every one for `run` and `enqueue`, all but FOLD_OWN_FIELDS for `fold`. */
export function settingFields(command: 'fold' | 'run' | 'enqueue'): SettingField[] {
  const all = Object.keys(SETTING_FLAGS) as SettingField[];
  return command === 'fold' ? all.filter((f) => !(f in FOLD_OWN_FIELDS)) : all;
}

/** What commander hands the action for the setting flags. */
export interface SettingFlags {
  model: string;
  ask: string[];
  chunkSize: number;
  checkpointEvery: number;
  policy: 'full' | 'streaming';
  sink?: number;
  window?: number;
  kv: KvStorage;
  kvCodec?: 'f32' | 'f16' | 'int8';
  maxNewTokens: number;
  maxBatchSize: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  stop: string[];
  maxTokensPerDocument: number;
  chat?: boolean;
  keepFinal?: boolean;
  group: 'file' | 'directory' | 'auto';
}

/** The options of one field, with the schema's defaults. */
function optionsOf(field: SettingField, model: ModelFlag): Option[] {
  switch (field) {
    case 'model':
      return [new Option(model.flags, model.help).makeOptionMandatory()];
    case 'queries':
      return [new Option('--ask <text>', 'a question to answer from the folded state (repeatable)').argParser(collect).default([])];
    case 'chunkSize':
      return [new Option('--chunk-size <n>', 'tokens per fold step').argParser(positiveInt('--chunk-size')).default(DEFAULT_CHUNK_SIZE)];
    case 'checkpointEvery':
      return [new Option('--checkpoint-every <n>', 'fold steps between checkpoints').argParser(positiveInt('--checkpoint-every')).default(DEFAULT_CHECKPOINT_EVERY)];
    case 'policy':
      return [
        new Option('--policy <policy>', 'what the KV accumulator keeps').choices(['full', 'streaming']).default('full'),
        new Option('--sink <n>', `streaming: attention-sink tokens kept (default ${DEFAULT_STREAMING_SINK})`).argParser(nonNegativeInt('--sink')),
        new Option('--window <n>', 'streaming: most recent tokens kept').argParser(positiveInt('--window')),
      ];
    case 'kv':
      return [new Option('--kv <width>', 'width the KV cache is held at, in memory and checkpoints: f32, f16 (half), int8 (a byte a value, a scale a head row)').choices(KV_STORAGES).default(DEFAULT_KV)];
    case 'kvCodec':
      return [new Option('--kv-codec <codec>', 'checkpoint codec: f32, f16 or int8 (default: the --kv width, lossless)').choices(KV_CODECS)];
    case 'maxNewTokens':
      return [new Option('--max-new-tokens <n>', 'tokens to generate per answer (0: fold only)').argParser(nonNegativeInt('--max-new-tokens')).default(DEFAULT_MAX_NEW_TOKENS)];
    case 'maxBatchSize':
      return [
        new Option('--max-batch-size <n>', "questions decoded together, one step reading the folded cache once for all of them (1: one at a time)").argParser(positiveInt('--max-batch-size')).default(DEFAULT_MAX_BATCH_SIZE),
      ];
    case 'sampling':
      return [
        new Option('--temperature <t>', 'sample answers at this temperature (> 0) instead of taking the most likely token').argParser(number('--temperature')),
        new Option('--top-k <k>', 'sampling: keep the k most likely tokens').argParser(nonNegativeInt('--top-k')),
        new Option('--top-p <p>', 'sampling: keep the smallest set of tokens whose probability reaches p').argParser(number('--top-p')),
        new Option('--seed <n>', 'sampling: the seed of question 1 (question i uses seed + i - 1); the same seed gives the same answers').argParser(integer('--seed')),
      ];
    case 'stop':
      return [new Option('--stop <text>', 'end an answer before this text (repeatable)').argParser(collect).default([])];
    case 'maxTokensPerDocument':
      return [new Option('--max-tokens-per-document <n>', 'documents longer than this fail alone, before folding').argParser(positiveInt('--max-tokens-per-document')).default(DEFAULT_MAX_TOKENS_PER_DOCUMENT)];
    case 'chatTemplate':
      return [new Option('--chat', "wrap each question in the model's chat template")];
    case 'keepFinalState':
      return [new Option('--keep-final', 'keep each final KV state for later questions (fold once, ask many)')];
    case 'grouping':
      return [new Option('--group <grouping>', 'file: one document per file; directory: one per top-level directory; auto: documents that fit --max-tokens-per-document, a directory together where it fits (best for codebases)').choices(GROUPINGS).default(DEFAULT_GROUPING)];
  }
}

/** How a command names its model: `fold` loads a folder, `run` and `enqueue` also take store URIs. */
export interface ModelFlag {
  readonly flags: `--model <${string}>`;
  readonly help: string;
}

/** Registers the setting flags of `command` (see settingFields). */
export function addSettingOptions(cmd: Command, command: 'fold' | 'run' | 'enqueue', model: ModelFlag): Command {
  for (const field of settingFields(command)) for (const option of optionsOf(field, model)) cmd.addOption(option);
  return cmd;
}

/** The KV policy the flags ask for, refusing combinations that do not go together. */
export function policyOf(flags: Pick<SettingFlags, 'policy' | 'sink' | 'window'>): FoldPolicy {
  if (flags.policy === 'streaming') {
    if (flags.window === undefined) throw new CliError('--policy streaming needs --window N (the most recent tokens to keep)');
    return { kind: 'streaming', sink: flags.sink ?? DEFAULT_STREAMING_SINK, window: flags.window };
  }
  if (flags.window !== undefined || flags.sink !== undefined) throw new CliError('--sink and --window go with --policy streaming');
  return { kind: 'full' };
}

/** The policy for resolvePolicy(). */
export function policyChoice(flags: Pick<SettingFlags, 'policy' | 'sink' | 'window'>): PolicyChoice {
  return { spec: policyOf(flags) };
}

/** The checkpoint codec the flags ask for: --kv-codec, else the --kv width; an int8 cache is stored as int8. */
export function checkpointCodec(flags: Pick<SettingFlags, 'kv' | 'kvCodec'>): 'f32' | 'f16' | 'int8' {
  if (flags.kv === 'int8' && flags.kvCodec && flags.kvCodec !== 'int8') {
    throw new CliError(`--kv-codec ${flags.kvCodec} cannot store an int8 cache: it is checkpointed as it is held (int8 codes and scales, losslessly); drop --kv-codec`);
  }
  return flags.kvCodec ?? flags.kv;
}

/** Sampling as the flags ask for it; absent (greedy) without --temperature. */
export async function samplingOf(flags: Pick<SettingFlags, 'temperature' | 'topK' | 'topP' | 'seed'>): Promise<Sampling | undefined> {
  if (flags.temperature === undefined) {
    const stray = (['topK', 'topP', 'seed'] as const).filter((k) => flags[k] !== undefined);
    if (stray.length) throw new CliError(`${stray.map((k) => FLAG_OF[k]).join(', ')} sample answers: add --temperature T (> 0)`);
    return undefined;
  }
  const sampling = {
    temperature: flags.temperature,
    seed: flags.seed ?? 0,
    ...(flags.topK !== undefined ? { topK: flags.topK } : {}),
    ...(flags.topP !== undefined ? { topP: flags.topP } : {}),
  };
  const { Sampling } = await import('@kvfold/contract');
  const checked = Sampling.safeParse(sampling);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const key = issue?.path[0] as keyof typeof FLAG_OF;
    throw new CliError(`${FLAG_OF[key]} ${issue?.message}, got ${sampling[key as keyof typeof sampling]}`);
  }
  return sampling;
}

const FLAG_OF = { topK: '--top-k', topP: '--top-p', seed: '--seed', temperature: '--temperature' } as const;

/**
 * The batch settings the flags say, checked by the schema; a value the schema refuses is an error
 * naming its flag. `model` is given as the caller resolved it (a path made absolute, or a URI).
 */
export async function settingsFromFlags(flags: SettingFlags, model: string): Promise<Omit<BatchSpecInput, 'corpus'>> {
  const sampling = await samplingOf(flags);
  const settings = {
    model,
    queries: flags.ask,
    chunkSize: flags.chunkSize,
    checkpointEvery: flags.checkpointEvery,
    policy: policyOf(flags),
    kv: flags.kv,
    ...(flags.kvCodec ? { kvCodec: flags.kvCodec } : {}),
    maxNewTokens: flags.maxNewTokens,
    maxBatchSize: flags.maxBatchSize,
    ...(sampling ? { sampling } : {}),
    stop: flags.stop,
    maxTokensPerDocument: flags.maxTokensPerDocument,
    chatTemplate: flags.chat === true,
    keepFinalState: flags.keepFinal === true,
    grouping: flags.group,
  } satisfies Record<Exclude<SettingField, 'sampling' | 'kvCodec'>, unknown> & Omit<BatchSpecInput, 'corpus'>;
  const { BatchSettings } = await import('@kvfold/contract');
  const checked = BatchSettings.safeParse(settings);
  if (!checked.success) {
    const issue = checked.error.issues[0];
    const field = issue?.path[0] as SettingField | undefined;
    const flag = field === 'sampling' ? FLAG_OF[issue?.path[1] as keyof typeof FLAG_OF] : field ? SETTING_FLAGS[field].join('/') : 'the settings';
    throw new CliError(`${flag} ${issue?.message ?? 'is not valid'}`);
  }
  return settings;
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
