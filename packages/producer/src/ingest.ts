/**
 * ingest(): inputs (files, directories, archives, jsonl) -> decoded, grouped, content-addressed
 * documents, streamed, with a report of everything skipped or refused.
 */
import { readFile, stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { Grouping } from '@kvfold/jobs';
import { decodeEntry } from './decode-text.ts';
import { makeDocument, packFiles } from './document.ts';
import type { Document } from './document.ts';
import { ProducerError, ProducerErrorCode } from './errors.ts';
import { inputKind } from './input-kind.ts';
import type { InputKind } from './input-kind.ts';
import { resolveLimits } from './limits.ts';
import type { IngestLimits } from './limits.ts';
import { readJsonl } from './read-jsonl.ts';
import { readTar } from './read-tar.ts';
import { readZip } from './read-zip.ts';
import { newReport } from './report.ts';
import type { IngestReport } from './report.ts';
import { reportSink } from './sink.ts';
import type { EntrySink, SourceEntry } from './sink.ts';
import { walkDirectory } from './walk-directory.ts';

/** Options of {@link ingest}. */
export interface IngestOptions {
  /**
   * `file`: one document per file. `directory`: one per directory input, and one per top-level
   * directory of an archive (its root files form one more, named after the archive), the files
   * packed under `===== path =====` headers in sorted order. jsonl lines are always one each.
   * Grouping holds one input's decoded text in memory until the input ends (sorted order needs
   * every path); archives are bounded by `limits.maxTotalBytes`.
   */
  readonly grouping?: Grouping;
  readonly limits?: Partial<IngestLimits>;
}

/** Documents (iterate once) and the report they fill in as they are produced. */
export interface IngestRun extends AsyncIterable<Document> {
  readonly report: IngestReport;
}

/**
 * Ingests `inputs` lazily: nothing is read until the run is iterated. Missing inputs throw
 * `KVF_INGEST_INPUT_NOT_FOUND` (all of them named) before anything else is read.
 */
export function ingest(inputs: readonly string[], options: IngestOptions = {}): IngestRun {
  const report = newReport(inputs);
  const grouping = options.grouping ?? 'file';
  const limits = resolveLimits(options.limits);
  return {
    report,
    [Symbol.asyncIterator]: () => documents(inputs, grouping, limits, report)[Symbol.asyncIterator](),
  };
}

async function* documents(
  inputs: readonly string[],
  grouping: Grouping,
  limits: IngestLimits,
  report: IngestReport,
): AsyncGenerator<Document> {
  const kinds = await classifyAll(inputs);
  for (const [index, input] of inputs.entries()) {
    const kind = kinds[index] as InputKind;
    const sink = reportSink(report, input);
    for await (const doc of inputDocuments(input, kind, grouping, limits, sink, report)) {
      report.documents += 1;
      report.bytes += doc.bytes.byteLength;
      yield doc;
    }
  }
}

async function classifyAll(inputs: readonly string[]): Promise<InputKind[]> {
  const missing: string[] = [];
  const kinds: InputKind[] = [];
  for (const input of inputs) {
    try {
      kinds.push(inputKind(input, await stat(input)));
    } catch {
      missing.push(input);
    }
  }
  if (missing.length > 0) {
    throw new ProducerError(ProducerErrorCode.InputNotFound, `input not found: ${missing.join(', ')} (check the paths)`);
  }
  return kinds;
}

/** The entries of one input (jsonl is handled apart: its lines are documents already). */
function entriesOf(input: string, kind: Exclude<InputKind, 'jsonl'>, limits: IngestLimits, sink: EntrySink): AsyncIterable<SourceEntry> {
  switch (kind) {
    case 'directory':
      return walkDirectory(input, basename(resolve(input)), limits, sink);
    case 'tar':
      return readTar(input, limits, sink);
    case 'zip':
      return readZip(input, limits, sink);
    case 'file':
      return singleFile(input, limits, sink);
  }
}

async function* singleFile(input: string, limits: IngestLimits, sink: EntrySink): AsyncGenerator<SourceEntry> {
  const path = basename(input);
  const { size } = await stat(input);
  if (size > limits.maxEntryBytes) {
    sink.skip(path, `${size} bytes exceeds maxEntryBytes ${limits.maxEntryBytes}`);
    return;
  }
  yield { path, bytes: await readFile(input) };
}

async function* inputDocuments(
  input: string,
  kind: InputKind,
  grouping: Grouping,
  limits: IngestLimits,
  sink: EntrySink,
  report: IngestReport,
): AsyncGenerator<Document> {
  if (kind === 'jsonl') {
    for await (const line of readJsonl(input, sink)) {
      if (line.text.trim() === '') {
        sink.skip(line.path, 'empty text');
        continue;
      }
      report.files += 1;
      yield makeDocument(input, [line.path], line.text);
    }
    return;
  }
  const groups = new Map<string, Array<{ path: string; text: string }>>();
  for await (const entry of entriesOf(input, kind, limits, sink)) {
    const decoded = decodeEntry(entry.path, entry.bytes);
    if (!decoded.ok) {
      sink.skip(entry.path, decoded.reason);
      continue;
    }
    report.files += 1;
    if (grouping === 'file' || kind === 'file') {
      yield makeDocument(input, [entry.path], decoded.text);
      continue;
    }
    const key = groupKey(input, entry.path);
    const files = groups.get(key) ?? [];
    files.push({ path: entry.path, text: decoded.text });
    groups.set(key, files);
  }
  for (const key of [...groups.keys()].sort()) {
    const files = groups.get(key) ?? [];
    const paths = files.map((f) => f.path).sort();
    yield makeDocument(input, paths, packFiles(files));
  }
}

/** The group of a path: its top-level directory, or the input's own name for root files. */
function groupKey(input: string, path: string): string {
  const slash = path.indexOf('/');
  return slash === -1 ? basename(input) : path.slice(0, slash);
}
