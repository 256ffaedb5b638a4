/**
 * The distributed commands: `kvfold enqueue | batches [recover] | status | results | cancel | retry` talk to the REST API
 * over HTTP; `kvfold serve` runs that API in this process (`runApi` of @kvfold/api-server), passing
 * --port/--host as KVFOLD_API_PORT/KVFOLD_API_HOST and the rest of the environment (REDIS_URL,
 * KVFOLD_STORE, KVFOLD_API_KEYS, ...) unchanged.
 *
 * The environment comes from ../env.ts (KVFOLD_API_URL, default http://127.0.0.1:8080, and
 * KVFOLD_API_KEY, both overridden by --api and --api-key), read when a command runs.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ApiClient } from '@kvfold/api-client';
import type { BatchStatus, CreatedBatch } from '@kvfold/contract';
import type { IngestReport } from '@kvfold/producer';
import { type Command, InvalidArgumentError } from 'commander';
import { CliError } from '../cli-error.ts';
import { positiveInt } from '../options.ts';
import { DEFAULT_API_URL } from '@kvfold/contract/defaults';
import { addSettingOptions, type SettingFlags, settingsFromFlags } from '../fold-options.ts';
import { loadCliProgress } from '../progress.ts';

/** The variables these commands read. */
export interface DistributedEnv {
  readonly apiUrl: string;
  readonly apiKey?: string;
  /** Passed whole to the API that `kvfold serve` runs. */
  readonly all: Readonly<Record<string, string | undefined>>;
}

/** KVFOLD_API_URL and KVFOLD_API_KEY from the CLI's environment (empty counts as unset). */
async function distributedEnv(): Promise<DistributedEnv> {
  const { cliEnv } = await import('../env.ts');
  const env = cliEnv();
  const apiKey = env.KVFOLD_API_KEY?.trim();
  return { apiUrl: env.KVFOLD_API_URL, ...(apiKey ? { apiKey } : {}), all: env.all };
}

interface ApiOptions {
  api?: string;
  apiKey?: string;
}

/** Poll interval of `status --watch`, ms: often enough to feel live, rare enough to cost nothing. */
const DEFAULT_WATCH_INTERVAL_MS = 1000;

/**
 * What to upload for one corpus path: a file as it is, a folder as a tar stream of what `kvfold run`
 * would read from it (packTree: same walker and decoding), built while the request goes out.
 */
async function uploadPart(path: string, reports: IngestReport[]): Promise<{ name: string; body: AsyncIterable<Uint8Array> }> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new CliError(`corpus ${path} does not exist (give files, folders, .tar/.tar.gz/.zip archives or .jsonl)`);
  if (!info.isDirectory()) return { name: basename(path), body: createReadStream(path) };
  const { packTree } = await import('@kvfold/producer');
  const packed = packTree(path);
  reports.push(packed.report);
  return { name: packed.name, body: packed.stream };
}

interface EnqueueOptions extends ApiOptions, SettingFlags {
  json?: boolean;
}

async function enqueue(env: DistributedEnv, corpus: string[], opts: EnqueueOptions): Promise<void> {
  const model = await stat(opts.model).then(
    (s) => (s.isDirectory() ? resolve(opts.model) : opts.model),
    () => opts.model,
  );
  const spec = await settingsFromFlags(opts, model);
  const local: IngestReport[] = [];
  const parts = [];
  for (const path of corpus) parts.push(await uploadPart(path, local));
  const created = await (await client(env, opts)).createBatchFromStreams(JSON.stringify(spec), parts);
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(created)}\n`);
    return;
  }
  await printReport(created, local);
  process.stdout.write(`${created.id}\n`);
}

/** One line per reason (with a count and the first names) for what this CLI and the API left out. */
async function printReport(created: CreatedBatch, local: readonly IngestReport[]): Promise<void> {
  const { summarizeReport, summaryLine } = await import('@kvfold/producer');
  const here = summarizeReport({ skipped: local.flatMap((r) => r.skipped), refused: local.flatMap((r) => r.refused) });
  const there = created.report.summary ?? summarizeReport(created.report as Parameters<typeof summarizeReport>[0]);
  for (const s of [...here, ...there]) process.stderr.write(`kvfold: ${summaryLine(s)}\n`);
  if (created.report.key && there.length > 0) process.stderr.write(`kvfold: every entry is listed in ${created.report.key} in the store\n`);
  const again = created.added === 0 ? ', already enqueued: nothing added' : '';
  process.stderr.write(`kvfold: batch ${created.id}: ${created.documents} documents, ${created.state}${again}\n`);
}

async function client(env: DistributedEnv, opts: ApiOptions): Promise<ApiClient> {
  const { ApiClient } = await import('@kvfold/api-client');
  const apiKey = opts.apiKey ?? env.apiKey;
  return new ApiClient({ baseUrl: opts.api ?? env.apiUrl, ...(apiKey ? { apiKey } : {}) });
}

/** One plain line describing a status. */
export function statusLine(s: BatchStatus): string {
  const c = s.counts;
  const done = c.completed + c.failed + c.cancelled;
  const eta = s.etaMs === null ? '' : ` eta ${Math.ceil(s.etaMs / 1000)}s`;
  return (
    `${s.id} ${s.state} ${done}/${c.total} documents (${c.completed} completed, ${c.failed} failed, ${c.cancelled} cancelled, ` +
    `${c.active} active, ${c.waiting} waiting) ${s.progress.tokens}/${s.progress.totalTokens} tokens ${(s.progress.fraction * 100).toFixed(1)}%${eta}`
  );
}

interface StatusOptions extends ApiOptions {
  watch?: boolean;
  json?: boolean;
  interval: number;
}

async function status(env: DistributedEnv, batchId: string, opts: StatusOptions): Promise<void> {
  const api = await client(env, opts);
  const { isTerminal } = await import('@kvfold/contract');
  const bar = opts.watch && !opts.json && process.stderr.isTTY === true ? progressBar() : undefined;
  let current = await api.status(batchId);
  for (;;) {
    if (opts.json) process.stdout.write(`${JSON.stringify(current)}\n`);
    else if (bar) bar.show(current);
    else process.stdout.write(`${statusLine(current)}\n`);
    if (!opts.watch || isTerminal(current.state)) break;
    await new Promise((r) => setTimeout(r, opts.interval));
    current = await api.status(batchId);
  }
  if (bar) {
    bar.stop();
    process.stdout.write(`${statusLine(current)}\n`);
  }
  if (opts.watch && current.state !== 'completed') {
    throw new CliError(`batch ${batchId} ended ${current.state}`);
  }
}

function progressBar() {
  const cliProgress = loadCliProgress();
  const bar = new cliProgress.SingleBar(
    {
      format: '{state} [{bar}] {percentage}% | {done}/{docs} documents ({failed} failed, {cancelled} cancelled) | {tokens}/{totalTokens} tokens | ETA {eta}',
      stream: process.stderr,
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    show(s: BatchStatus) {
      const payload = {
        state: s.state,
        done: s.counts.completed + s.counts.failed + s.counts.cancelled,
        docs: s.counts.total,
        failed: s.counts.failed,
        cancelled: s.counts.cancelled,
        tokens: s.progress.tokens,
        totalTokens: s.progress.totalTokens,
        eta: s.etaMs === null ? '?' : `${Math.ceil(s.etaMs / 1000)}s`,
      };
      if (!started) bar.start(1000, 0, payload);
      started = true;
      bar.update(Math.round(s.progress.fraction * 1000), payload);
    },
    stop: () => bar.stop(),
  };
}

interface BatchesOptions extends ApiOptions {
  limit?: number;
  cursor?: string;
  all?: boolean;
  json?: boolean;
}

async function batches(env: DistributedEnv, opts: BatchesOptions): Promise<void> {
  const api = await client(env, opts);
  let cursor = opts.cursor;
  for (;;) {
    const page = await api.listBatches({ ...(opts.limit ? { limit: opts.limit } : {}), ...(cursor ? { cursor } : {}) });
    if (opts.json) process.stdout.write(`${JSON.stringify(page)}\n`);
    else for (const b of page.batches) process.stdout.write(`${statusLine(b)}\n`);
    if (page.nextCursor === null) return;
    if (!opts.all) {
      process.stderr.write(`kvfold: more batches: kvfold batches --cursor ${page.nextCursor} (or --all)\n`);
      return;
    }
    cursor = page.nextCursor;
  }
}

async function results(env: DistributedEnv, batchId: string, opts: ApiOptions & { out?: string }): Promise<void> {
  const body = await (await client(env, opts)).results(batchId);
  if (opts.out) await pipeline(body, createWriteStream(opts.out));
  else for await (const chunk of body) process.stdout.write(chunk);
}

async function cancel(env: DistributedEnv, batchId: string, opts: ApiOptions & { json?: boolean }): Promise<void> {
  const answer = await (await client(env, opts)).cancel(batchId);
  if (opts.json) process.stdout.write(`${JSON.stringify(answer)}\n`);
  else process.stdout.write(`${answer.id} ${answer.state} (${answer.removed} waiting documents removed)\n`);
}

async function retry(env: DistributedEnv, batchId: string, opts: ApiOptions & { json?: boolean }): Promise<void> {
  const answer = await (await client(env, opts)).retry(batchId);
  if (opts.json) process.stdout.write(`${JSON.stringify(answer)}\n`);
  else process.stdout.write(`${answer.id} ${answer.state} (${answer.requeued} documents enqueued again)\n`);
}

async function recover(env: DistributedEnv, opts: ApiOptions & { json?: boolean }): Promise<void> {
  const report = await (await client(env, opts)).recover();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(report)}\n`);
    return;
  }
  for (const b of report.requeued) process.stdout.write(`${b.id} ${b.state} (${b.requeued} documents enqueued again)\n`);
  process.stderr.write(`kvfold: ${report.rebuilt} batches rebuilt from the store, ${report.requeued.length} enqueued again\n`);
}

/** Runs the API in this process (not a child: a supervisor's signals reach it directly) until it is told to stop. */
async function serve(env: DistributedEnv, opts: { port?: number; host?: string }): Promise<void> {
  const { runApi } = await import('@kvfold/api-server');
  await runApi({
    ...env.all,
    ...(opts.port !== undefined ? { KVFOLD_API_PORT: String(opts.port) } : {}),
    ...(opts.host !== undefined ? { KVFOLD_API_HOST: opts.host } : {}),
  });
}

function withApi(command: Command): Command {
  return command
    .option('--api <url>', `API base URL (default KVFOLD_API_URL or ${DEFAULT_API_URL})`)
    .option('--api-key <key>', 'API key (default KVFOLD_API_KEY)');
}

/** Adds enqueue, batches (and batches recover), status, results, cancel, retry and serve to `program`. */
export function registerDistributed(program: Command): void {
  const enqueueCommand = withApi(program.command('enqueue'))
    .description('upload files, folders and archives to the API and fold them as one batch; prints the batch id')
    .argument('<corpus...>', 'files, folders, .tar/.tar.gz/.zip archives or .jsonl files');
  addSettingOptions(enqueueCommand, 'enqueue', { flags: '--model <dir|uri>', help: 'model the workers load: a folder path or a file:// / s3:// URI' })
    .option('--json', 'print the API answer as JSON')
    .action(async (corpus: string[], opts: EnqueueOptions) => enqueue(await distributedEnv(), corpus, opts));

  const list = withApi(program.command('batches'))
    .description('list batches, newest first, with their state and progress')
    .option('--limit <n>', 'batches per page (1..100, default 20)', positiveInt('--limit'))
    .option('--cursor <cursor>', 'continue from where the previous page ended')
    .option('--all', 'follow the pages to the oldest batch')
    .option('--json', 'print each page as the API answers it (one line per page)')
    .action(async (opts: BatchesOptions) => batches(await distributedEnv(), opts));

  withApi(list.command('recover'))
    .description('rebuild the batch registry from the object store and enqueue again the unfinished documents of batches Redis lost')
    .option('--json', 'print the API answer as JSON')
    // `batches` takes the same options, and commander gives them to whichever command they follow.
    .action(async (_opts: unknown, command: Command) => recover(await distributedEnv(), command.optsWithGlobals<ApiOptions & { json?: boolean }>()));

  withApi(program.command('status'))
    .description("print a batch's state, document counts, token progress and ETA")
    .argument('<batch>', 'batch id')
    .option('--watch', 'poll until the batch completes, fails or is cancelled (exit 1 unless completed)')
    .option('--interval <ms>', 'poll interval of --watch', positiveInt('--interval'), DEFAULT_WATCH_INTERVAL_MS)
    .option('--json', 'print the status as JSON (one line per poll with --watch)')
    .action(async (batchId: string, opts: StatusOptions) => status(await distributedEnv(), batchId, opts));

  withApi(program.command('results'))
    .description("write a batch's results as JSONL (all of them once finalized, else those written so far)")
    .argument('<batch>', 'batch id')
    .option('--out <file>', 'write to a file instead of standard output')
    .action(async (batchId: string, opts: ApiOptions & { out?: string }) => results(await distributedEnv(), batchId, opts));

  withApi(program.command('cancel'))
    .description('cancel a batch: waiting documents are dropped, active ones stop after their current step')
    .argument('<batch>', 'batch id')
    .option('--json', 'print the API answer as JSON')
    .action(async (batchId: string, opts: ApiOptions & { json?: boolean }) => cancel(await distributedEnv(), batchId, opts));

  withApi(program.command('retry'))
    .description('enqueue an ended batch again: its failed and cancelled documents resume from their checkpoints, completed ones are kept')
    .argument('<batch>', 'batch id')
    .option('--json', 'print the API answer as JSON')
    .action(async (batchId: string, opts: ApiOptions & { json?: boolean }) => retry(await distributedEnv(), batchId, opts));

  program
    .command('serve')
    .description('start the REST API in the foreground; configure it with REDIS_URL, KVFOLD_STORE, KVFOLD_API_KEYS')
    .option('--port <n>', 'port to listen on (default KVFOLD_API_PORT or 8080)', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError(`--port must be an integer 0..65535, got "${v}".`);
      return n;
    })
    .option('--host <host>', 'address to bind (default KVFOLD_API_HOST or 127.0.0.1)')
    .action(async (opts: { port?: number; host?: string }) => serve(await distributedEnv(), opts));
}
