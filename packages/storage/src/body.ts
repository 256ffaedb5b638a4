/**
 * Helpers over the `Body` union: iterate any body as Uint8Array chunks, and collect a stream.
 */
import { Readable } from 'node:stream';
import type { Body } from './object-store.ts';

/** Yields a body's bytes chunk by chunk without copying a Uint8Array body. */
export async function* bodyChunks(body: Body): AsyncGenerator<Uint8Array> {
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) {
    yield typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
  }
}

/** A body as a Readable stream (a Uint8Array becomes a one-chunk stream). */
export function bodyStream(body: Body): Readable {
  if (body instanceof Readable) return body;
  return Readable.from(bodyChunks(body), { objectMode: false });
}

/** Reads a whole stream into one Uint8Array. */
export async function collect(stream: AsyncIterable<Uint8Array | string>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    parts.push(bytes);
    total += bytes.length;
  }
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
