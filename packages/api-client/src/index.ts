/**
 * @kvfold/api-client: a small client of the REST API (its paths, over the platform's fetch and
 * node:http for streamed uploads), parsing every answer with the wire shapes of @kvfold/contract,
 * so the API and the CLI cannot drift apart.
 */
import { randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { z } from 'zod';
import { ApiErrorBody, BatchList, BatchStatus, CancelledBatch, CreatedBatch, DEFAULT_API_URL, RecoveredBatches, RetriedBatch, formatZodError } from '@kvfold/contract';

export { DEFAULT_API_URL };

/** Why a call to the API failed; `code` is the API's own or one of the client codes below. */
export class ApiClientError extends Error {
  override readonly name = 'ApiClientError';
  constructor(
    readonly code: string,
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Codes the client itself produces. */
export const ApiClientErrorCode = {
  Unreachable: 'KVF_API_UNREACHABLE',
  BadResponse: 'KVF_API_BAD_RESPONSE',
} as const;

/** Options of {@link ApiClient}. */
export interface ApiClientOptions {
  readonly baseUrl?: string;
  readonly apiKey?: string;
}

/** A client of the KV-Fold REST API. */
export class ApiClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;

  constructor(options: ApiClientOptions = {}) {
    this.baseUrl = (options.baseUrl ?? DEFAULT_API_URL).replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
  }

  /** Uploads files and a spec (multipart) and creates the batch. */
  async createBatch(form: FormData): Promise<CreatedBatch> {
    return this.#call(CreatedBatch, 'POST', '/v1/batches', form);
  }

  /**
   * Creates a batch from streamed files: one multipart body with the `spec` field and one `file`
   * part per entry, each read from its stream as the request goes out (nothing is held whole).
   */
  async createBatchFromStreams(spec: string, files: ReadonlyArray<{ readonly name: string; readonly body: AsyncIterable<Uint8Array> }>): Promise<CreatedBatch> {
    const boundary = `kvfold-${randomUUID()}`;
    const body = multipartBody(boundary, spec, files);
    return this.#call(CreatedBatch, 'POST', '/v1/batches', { stream: body, contentType: `multipart/form-data; boundary=${boundary}` });
  }

  /** One page of batches, newest first. */
  async listBatches(query: { limit?: number; cursor?: string } = {}): Promise<BatchList> {
    const params = new URLSearchParams();
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    const qs = params.size > 0 ? `?${params}` : '';
    return this.#call(BatchList, 'GET', `/v1/batches${qs}`);
  }

  /** The batch's status. */
  async status(batchId: string): Promise<BatchStatus> {
    return this.#call(BatchStatus, 'GET', `/v1/batches/${encodeURIComponent(batchId)}`);
  }

  /** Asks the batch to stop. */
  async cancel(batchId: string): Promise<CancelledBatch> {
    return this.#call(CancelledBatch, 'POST', `/v1/batches/${encodeURIComponent(batchId)}/cancel`);
  }

  /** Enqueues an ended batch's documents that did not complete (failed or cancelled) again. */
  async retry(batchId: string): Promise<RetriedBatch> {
    return this.#call(RetriedBatch, 'POST', `/v1/batches/${encodeURIComponent(batchId)}/retry`);
  }

  /** Rebuilds the registry from the store and enqueues again what Redis lost. */
  async recover(): Promise<RecoveredBatches> {
    return this.#call(RecoveredBatches, 'POST', '/v1/batches/recover');
  }

  /** The batch's results as a JSONL byte stream. */
  async results(batchId: string): Promise<AsyncIterable<Uint8Array>> {
    const response = await this.#send('GET', `/v1/batches/${encodeURIComponent(batchId)}/results`);
    if (!response.body) throw new ApiClientError(ApiClientErrorCode.BadResponse, `${this.baseUrl} sent results without a body`);
    return response.body as unknown as AsyncIterable<Uint8Array>;
  }

  /** Sends the request and parses its JSON answer with `schema`, naming a body that breaks it. */
  async #call<S extends z.ZodType>(schema: S, method: string, path: string, body?: RequestBody): Promise<z.output<S>> {
    const parsed = schema.safeParse(await this.#json(method, path, body));
    if (parsed.success) return parsed.data;
    throw new ApiClientError(
      ApiClientErrorCode.BadResponse,
      `${method} ${this.baseUrl}${path} answered with a body this client does not understand (${formatZodError(parsed.error)}); are the CLI and the API the same version?`,
    );
  }

  async #json(method: string, path: string, body?: RequestBody): Promise<unknown> {
    const response = await this.#send(method, path, body);
    try {
      return await response.json();
    } catch (err) {
      throw new ApiClientError(ApiClientErrorCode.BadResponse, `${method} ${this.baseUrl}${path} answered with something that is not JSON`, response.status, { cause: err });
    }
  }

  async #send(method: string, path: string, body?: RequestBody): Promise<Response> {
    const headers: Record<string, string> = {};
    if (this.#apiKey) headers['x-api-key'] = this.#apiKey;
    let response: Response;
    try {
      if (body instanceof FormData || body === undefined) response = await fetch(`${this.baseUrl}${path}`, { method, headers, ...(body ? { body } : {}) });
      else response = await streamRequest(`${this.baseUrl}${path}`, method, { ...headers, 'content-type': body.contentType }, body.stream);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as { code?: string }).code ?? (err as Error).message;
      throw new ApiClientError(
        ApiClientErrorCode.Unreachable,
        `the KV-Fold API at ${this.baseUrl} is not reachable (${why}); start it with \`kvfold serve\` or pass --api`,
        undefined,
        { cause: err },
      );
    }
    if (response.ok) return response;
    const parsed = ApiErrorBody.safeParse(await response.json().catch(() => null));
    if (!parsed.success) {
      throw new ApiClientError(ApiClientErrorCode.BadResponse, `${method} ${this.baseUrl}${path} failed with HTTP ${response.status}`, response.status);
    }
    const { code, message } = parsed.data.error;
    const hint = response.status === 401 ? ' (pass --api-key or set KVFOLD_API_KEY)' : '';
    throw new ApiClientError(code, `${message}${hint}`, response.status);
  }
}

/** A request body: a form held in memory, or a stream with its content type. */
type RequestBody = FormData | { readonly stream: AsyncIterable<Uint8Array>; readonly contentType: string };

/**
 * Sends `body` with node:http(s), which writes as the socket drains and keeps nothing it has sent
 * (Node 20's fetch holds every chunk of a streamed request body until the response ends). A
 * response that comes before the body is sent (a 413, a 401) is the answer.
 */
function streamRequest(url: string, method: string, headers: Record<string, string>, body: AsyncIterable<Uint8Array>): Promise<Response> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = send(url, { method, headers });
    let answered = false;
    req.on('response', (res) => {
      answered = true;
      const responseHeaders = new Headers();
      for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') responseHeaders.set(k, v);
      resolve(new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, { status: res.statusCode ?? 500, headers: responseHeaders }));
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    pipeline(Readable.from(body), req).catch((err: unknown) => {
      if (!answered) reject(err);
    });
  });
}

/** A multipart/form-data field or file name, quoted as the HTML standard does (`"`, CR, LF escaped). */
function quoted(name: string): string {
  return `"${name.replace(/"/g, '%22').replace(/\r/g, '%0D').replace(/\n/g, '%0A')}"`;
}

/** The multipart/form-data body of a `spec` field and `files`, streamed part by part. */
async function* multipartBody(boundary: string, spec: string, files: ReadonlyArray<{ readonly name: string; readonly body: AsyncIterable<Uint8Array> }>): AsyncGenerator<Uint8Array> {
  const text = (s: string) => new Uint8Array(Buffer.from(s, 'utf8'));
  yield text(`--${boundary}\r\nContent-Disposition: form-data; name="spec"\r\n\r\n${spec}\r\n`);
  for (const file of files) {
    yield text(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename=${quoted(file.name)}\r\nContent-Type: application/octet-stream\r\n\r\n`);
    for await (const chunk of file.body) yield chunk;
    yield text('\r\n');
  }
  yield text(`--${boundary}--\r\n`);
}
