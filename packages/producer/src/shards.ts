/**
 * Packing documents into size-capped shard objects: pure, no I/O. Identical documents are stored
 * once; their paths are merged into the first one's entry.
 */
import { sha256Hex } from '@kvfold/contract';
import type { Document } from './document.ts';

const MiB = 1024 * 1024;
/** Default cap on a shard object: large enough to amortise requests, small enough to retry cheaply. */
export const DEFAULT_SHARD_BYTES = 64 * MiB;

/** Where one document landed. `paths` may still grow while packing continues (duplicates). */
export interface PackedDocument {
  readonly docId: string;
  readonly paths: string[];
  /** Shard number (0-based). */
  readonly shard: number;
  readonly offset: number;
  readonly length: number;
}

/** One finished shard: its number, bytes, digest and the documents it holds. */
export interface BuiltShard {
  readonly number: number;
  readonly bytes: Uint8Array;
  readonly sha256: string;
  readonly documents: readonly PackedDocument[];
}

/** Where a document was placed, and the shard its arrival closed (if any). */
export interface Placement {
  readonly placed: PackedDocument;
  readonly closed?: number;
}

/**
 * Decides where documents go, holding no bytes: in arrival order, a shard is closed when the next
 * document would overflow the cap; a document larger than the cap gets a shard of its own;
 * identical documents are placed once and their paths merged.
 */
export class ShardLayout {
  readonly #cap: number;
  readonly #byId = new Map<string, PackedDocument>();
  readonly #documents: PackedDocument[] = [];
  #size = 0;
  #number = 0;
  #duplicates = 0;

  constructor(shardBytes: number = DEFAULT_SHARD_BYTES) {
    if (!Number.isInteger(shardBytes) || shardBytes < 1) throw new RangeError(`shardBytes must be an integer >= 1, got ${shardBytes}`);
    this.#cap = shardBytes;
  }

  /** Every distinct document so far, in order. */
  get documents(): readonly PackedDocument[] {
    return this.#documents;
  }

  /** Documents dropped because an identical one was already placed. */
  get duplicates(): number {
    return this.#duplicates;
  }

  /** Places a document of `length` bytes; undefined when it duplicates an earlier one. */
  add(doc: { readonly docId: string; readonly paths: readonly string[]; readonly length: number }): Placement | undefined {
    const seen = this.#byId.get(doc.docId);
    if (seen) {
      for (const path of doc.paths) if (!seen.paths.includes(path)) seen.paths.push(path);
      this.#duplicates += 1;
      return undefined;
    }
    const closed = this.#size > 0 && this.#size + doc.length > this.#cap ? this.finish() : undefined;
    const placed: PackedDocument = { docId: doc.docId, paths: [...doc.paths], shard: this.#number, offset: this.#size, length: doc.length };
    this.#size += doc.length;
    this.#byId.set(doc.docId, placed);
    this.#documents.push(placed);
    return closed === undefined ? { placed } : { placed, closed };
  }

  /** Closes the current shard; returns its number, or undefined when it holds nothing. */
  finish(): number | undefined {
    if (this.#size === 0) return undefined;
    this.#size = 0;
    this.#number += 1;
    return this.#number - 1;
  }
}

/** Packs documents into shards held in memory (see {@link ShardLayout} for the placement rules). */
export class ShardPacker {
  readonly #layout: ShardLayout;
  #parts: Uint8Array[] = [];
  #current: PackedDocument[] = [];

  constructor(shardBytes: number = DEFAULT_SHARD_BYTES) {
    this.#layout = new ShardLayout(shardBytes);
  }

  /** Every distinct document so far, in order. */
  get documents(): readonly PackedDocument[] {
    return this.#layout.documents;
  }

  /** Documents dropped because an identical one was already packed. */
  get duplicates(): number {
    return this.#layout.duplicates;
  }

  /** Adds a document; returns the shard it closed, if any. */
  add(doc: Pick<Document, 'docId' | 'paths' | 'bytes'>): BuiltShard | undefined {
    const placement = this.#layout.add({ docId: doc.docId, paths: doc.paths, length: doc.bytes.byteLength });
    if (!placement) return undefined;
    const closed = placement.closed === undefined ? undefined : this.#close(placement.closed);
    this.#parts.push(doc.bytes);
    this.#current.push(placement.placed);
    return closed;
  }

  /** Closes the last shard, if it holds anything. */
  finish(): BuiltShard | undefined {
    const number = this.#layout.finish();
    return number === undefined ? undefined : this.#close(number);
  }

  #close(number: number): BuiltShard {
    const bytes = new Uint8Array(Buffer.concat(this.#parts));
    const shard: BuiltShard = { number, bytes, sha256: sha256Hex(bytes), documents: this.#current };
    this.#parts = [];
    this.#current = [];
    return shard;
  }
}

/** Packs `docs` into shards of at most `shardBytes` (see {@link ShardPacker}), yielding each as it closes. */
export async function* buildShards(
  docs: AsyncIterable<Document> | Iterable<Document>,
  options: { readonly shardBytes?: number; readonly packer?: ShardPacker } = {},
): AsyncGenerator<BuiltShard> {
  const packer = options.packer ?? new ShardPacker(options.shardBytes);
  for await (const doc of docs) {
    const closed = packer.add(doc);
    if (closed) yield closed;
  }
  const last = packer.finish();
  if (last) yield last;
}

/** Store key of shard `number` of a corpus. */
export function shardKey(corpusId: string, number: number): string {
  return `corpora/${corpusId}/shards/${String(number).padStart(5, '0')}.bin`;
}

/** Store key of a corpus index. */
export function corpusIndexKey(corpusId: string): string {
  return `corpora/${corpusId}/index.json`;
}

/**
 * The corpus id: sha256 over the layout version, shard cap, grouping and, in order, each
 * document id with its paths. Same inputs and options give the same id and the same bytes.
 */
export function corpusIdOf(documents: readonly Pick<PackedDocument, 'docId' | 'paths'>[], shardBytes: number, grouping: string): string {
  const lines = documents.map((d) => `${d.docId}\t${JSON.stringify(d.paths)}\n`);
  return sha256Hex(`kvfold-corpus/1\nshardBytes=${shardBytes}\ngrouping=${grouping}\n${lines.join('')}`);
}
