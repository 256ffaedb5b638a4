/**
 * A document made ready for the job loop: its questions encoded, its KV policy picked, its limits
 * worked out, and its text proven or counted within them. The one place that turns text and a
 * batch's settings into tokens, behind `kvfold fold`, `kvfold run` and the queue worker.
 *
 * Order matters for cost: the questions and the policy are cheap and may refuse the whole batch's
 * settings; a document the vocabulary proves too long is refused before the tokenizer runs over it
 * (token-floor.ts); only then is it tokenized and counted.
 */
import type { KvPolicy, SamplingOptions } from '@kvfold/fold-core';
import { type LoadedModel, unknownWarning } from '@kvfold/onnx';
import { provenTooLong, TokenFloor } from '@kvfold/producer';
import { type DocumentLimits, checkLength, documentLimits, type LimitSettings } from './document-limits.ts';
import { DocumentError, DocumentErrorCode } from './failures.ts';
import type { JobSettings, Query } from './job-loop.ts';
import { type PolicyChoice, resolvePolicy } from './policy-options.ts';

/** The settings that decide how a text becomes a job: a batch's fold settings, or `kvfold fold`'s flags. */
export interface PrepareSettings extends PolicyChoice {
  readonly queries: readonly string[];
  /** Wrap each question in the model's chat template; refused for a model without one. */
  readonly chatTemplate: boolean;
  readonly maxNewTokens: number;
  /** The batch's limit; absent for `kvfold fold`. */
  readonly maxTokensPerDocument?: number;
  readonly beyondMaxPositions?: boolean;
}

export interface PreparedDocument {
  readonly tokens: Int32Array;
  readonly questions: readonly Query[];
  readonly limits: DocumentLimits;
  readonly policy: KvPolicy;
  /** The policy as checkpoints and results name it (`full`, `streaming(sink=4,window=1024)`). */
  readonly policyName: string;
  /** Things the user should know that do not stop the fold (`<unk>` text, positions past the model's). */
  readonly warnings: readonly string[];
}

/** Each model's vocabulary as pieces (token-floor.ts), built on first use; undefined where it proves nothing. */
const floors = new WeakMap<LoadedModel, TokenFloor | undefined>();

/**
 * Prepares `text` (named `name` in errors and warnings, e.g. `document src/a.ts`) for a fold on
 * `model`. Throws DocumentError (a KVF_DOC_* code) for a document that cannot be folded as asked,
 * and the model's KVF_MODEL_NO_CHAT_TEMPLATE for a chat question to a model without a template.
 */
export function prepareDocument(model: LoadedModel, text: string, settings: PrepareSettings, name: string): PreparedDocument {
  const warnings: string[] = [];
  const questions = settings.queries.map((q) => encodeQuestion(model, q, settings.chatTemplate, warnings));
  const { policy, name: policyName } = choosePolicy(model, settings, name);
  const limitSettings: LimitSettings = {
    ...(settings.maxTokensPerDocument !== undefined ? { maxTokensPerDocument: settings.maxTokensPerDocument } : {}),
    maxNewTokens: settings.maxNewTokens,
    questionTokens: questions.map((q) => q.tokens.length),
    positionsGrow: settings.spec.kind === 'full',
    ...(settings.beyondMaxPositions ? { beyondMaxPositions: true } : {}),
  };
  const limits = documentLimits(model.decoder.layout.maxPositions, limitSettings);
  refuseProvenTooLong(model, text, limits, name);
  const encoded = model.tokenizer.encode(text, { document: true });
  if (encoded.unknown) warnings.unshift(unknownWarning(name, encoded.unknown, model.folder.dir));
  warnings.push(...checkLength(encoded.ids.length, limits, limitSettings, name));
  return { tokens: encoded.ids, questions, limits, policy, policyName, warnings };
}

/** How the job loop folds and answers a prepared document on `model`. */
export function jobSettings(
  model: LoadedModel,
  doc: PreparedDocument,
  s: {
    readonly chunkSize: number;
    readonly nll: boolean;
    readonly maxNewTokens: number;
    readonly maxBatchSize: number;
    readonly sampling?: SamplingOptions | undefined;
    readonly stop: readonly string[];
  },
): JobSettings {
  return {
    chunkSize: s.chunkSize,
    policy: doc.policy,
    nll: s.nll,
    maxNewTokens: s.maxNewTokens,
    maxBatchSize: s.maxBatchSize,
    stopTokens: model.stopTokens,
    decode: (ids) => model.tokenizer.decode(ids),
    ...(s.sampling ? { sampling: s.sampling } : {}),
    ...(s.stop.length ? { stopStrings: s.stop } : {}),
  };
}

function encodeQuestion(model: LoadedModel, text: string, chat: boolean, warnings: string[]): Query {
  const plain = model.tokenizer.encode(text, { document: false });
  if (plain.unknown) warnings.push(unknownWarning(`question ${JSON.stringify(text)}`, plain.unknown, model.folder.dir));
  const tokens = chat ? model.tokenizer.encodeChat([{ role: 'user', content: text }], { continuing: true }) : plain.ids;
  if (tokens.length === 0) throw new DocumentError(DocumentErrorCode.Question, `question ${JSON.stringify(text)} tokenizes to nothing; ask a non-empty question`);
  return { text, tokens };
}

/** The KV policy for this model; a combination the model or fold-core refuses is a DocumentError. */
function choosePolicy(model: LoadedModel, choice: PolicyChoice, name: string): ReturnType<typeof resolvePolicy> {
  try {
    return resolvePolicy(model, choice);
  } catch (err) {
    throw new DocumentError(DocumentErrorCode.Policy, `${name}: policy ${JSON.stringify(choice.spec)} on model ${model.folder.dir}: ${(err as Error).message}`);
  }
}

/**
 * Refuses a document the model's vocabulary proves longer than the limit before it is tokenized,
 * so no tokenizer pass is spent only to reject it. The producer refuses these at ingest when it can
 * read the model; this covers models only the workers see, and `kvfold fold`.
 */
function refuseProvenTooLong(model: LoadedModel, text: string, limits: DocumentLimits, name: string): void {
  if (!Number.isFinite(limits.maxTokens)) return;
  if (!floors.has(model)) floors.set(model, TokenFloor.of(model.folder.tokenizerJson));
  const floor = floors.get(model);
  const lower = floor ? provenTooLong(text, { maxTokens: limits.maxTokens, floor }) : undefined;
  if (lower === undefined) return;
  const proof = `${name} has at least ${lower} tokens (the fewest pieces of the model's vocabulary its text can be cut into)`;
  throw new DocumentError(
    DocumentErrorCode.TooLong,
    limits.boundBy === 'batch'
      ? `${proof}, over the batch's limit of ${limits.maxTokens} (maxTokensPerDocument); split it or raise the limit`
      : `${proof}, more than the ${limits.maxTokens} that the model's ${limits.maxPositions} positions (max_position_embeddings) leave after the longest question and its answer; split it, shorten the questions or answers, or use the streaming policy`,
  );
}
