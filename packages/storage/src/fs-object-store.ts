/**
 * FsObjectStore: the embedded default store, objects as files under a root directory.
 *
 * Writes are atomic: bytes go to a temp file in the target's directory, are fsynced, and are
 * renamed over the target under the key's lock file, then the directory is fsynced. A reader sees
 * the old object or the new one, never a torn one, and a crash leaves at most a temp file that
 * `list` ignores.
 *
 * ETag: `<inode>-<size>-<mtime ns>` in hex, read from the file's stat. Every put renames a fresh
 * file into place, so a replaced object gets a new inode and mtime; computing it needs no read of
 * the content (a content hash would make `head` read the whole segment).
 */
import { constants as bufferConstants } from 'node:buffer';
import { randomUUID } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { mkdir, open, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { bodyChunks } from './body.ts';
import { ObjectNotFoundError, PreconditionFailedError, StoreError, storeErrors } from './errors.ts';
import { type LockTiming, lockKey } from './fs-lock.ts';
import { assertKey, assertRange, RESERVED_PREFIX } from './keys.ts';
import type { Body, ByteRange, ObjectInfo, ObjectStore, PutOptions } from './object-store.ts';

export interface FsStoreOptions {
  /** How long a put waits for another writer's lock on the same key (ms). Default 15 s. */
  readonly lockTimeoutMs?: number;
  /** Age after which a lock file is a crashed writer's and is broken (ms). Default 10 s. */
  readonly lockStaleMs?: number;
}

/** A lock is held for one stat and one rename; 10 s without release means its holder died or is stuck. */
const DEFAULT_LOCK_STALE_MS = 10_000;
/** Waiters must outlast the stale age, or they would give up before they may break a dead lock. */
const DEFAULT_LOCK_TIMEOUT_MS = 15_000;
/** The largest Buffer Node allocates (4 GiB on 64-bit Node 20). */
const MAX_LENGTH = bufferConstants.MAX_LENGTH;
/** One read call moves at most this much: a single read is capped near 2 GiB by the kernel and libuv. */
const READ_CHUNK = 64 * 1024 * 1024;
/** A concurrent delete may remove a just-created empty directory; retry the temp file this often. */
const MKDIR_RETRIES = 5;

/** An ObjectStore over a local directory. */
export class FsObjectStore implements ObjectStore {
  readonly uri: string;
  readonly conditionalWrites = true;
  /** Absolute root directory. */
  readonly root: string;
  readonly #lock: LockTiming;

  constructor(root: string, options: FsStoreOptions = {}) {
    this.root = resolve(root);
    this.uri = pathToFileURL(this.root).href;
    this.#lock = {
      timeoutMs: options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
      staleMs: options.lockStaleMs ?? DEFAULT_LOCK_STALE_MS,
    };
  }

  /** Creates the root if needed and checks it is a writable directory. */
  async check(): Promise<void> {
    try {
      await mkdir(this.root, { recursive: true });
      const probe = join(this.root, `${RESERVED_PREFIX}probe-${randomUUID()}`);
      const handle = await open(probe, 'wx');
      await handle.close();
      await rm(probe, { force: true });
    } catch (err) {
      throw storeErrors.io(this.uri, `checking that the root ${this.root} is a writable directory`, err);
    }
  }

  async put(key: string, body: Body, options: PutOptions = {}): Promise<{ etag: string }> {
    const path = this.#pathOf(key);
    const dir = dirname(path);
    const tmp = join(dir, `${RESERVED_PREFIX}tmp-${randomUUID()}`);
    try {
      // The etag is the temp file's (rename keeps inode, size and mtime), so the lock is held for
      // the compare and the rename alone.
      const etag = etagOf(await this.#writeTemp(tmp, body));
      const release = await lockKey(this.uri, key, path, this.#lock);
      try {
        const current = await statOrNull(path);
        if (options.ifNoneMatch === '*' && current) {
          throw new PreconditionFailedError(this.uri, key, 'the key already exists');
        }
        if (options.ifMatch !== undefined && (!current || etagOf(current) !== options.ifMatch)) {
          const found = current ? `its etag is ${etagOf(current)}` : 'it does not exist';
          throw new PreconditionFailedError(this.uri, key, `expected etag ${options.ifMatch}, ${found}`);
        }
        await rename(tmp, path);
      } finally {
        await release();
      }
      await fsyncDir(dir);
      return { etag };
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      if (err instanceof StoreError) throw err;
      throw storeErrors.io(this.uri, `writing ${key}`, err);
    }
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.#pathOf(key);
    assertRange(this.uri, key, range);
    const handle = await this.#open(key, path);
    try {
      if (!range) return handle.createReadStream();
      const size = (await handle.stat()).size;
      const end = Math.min(range.end ?? size, size);
      if (range.end === range.start) {
        await handle.close();
        return Readable.from([]);
      }
      if (range.start >= size) throw storeErrors.badRange(this.uri, key, range.start, range.end);
      // fs ranges are inclusive at the end.
      return handle.createReadStream({ start: range.start, end: end - 1 });
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async getBytes(key: string, range?: ByteRange): Promise<Uint8Array> {
    const path = this.#pathOf(key);
    assertRange(this.uri, key, range);
    const handle = await this.#open(key, path);
    try {
      const size = (await handle.stat()).size;
      if (range && range.end === range.start) return new Uint8Array(0);
      const start = range?.start ?? 0;
      if (range && start >= size) throw storeErrors.badRange(this.uri, key, range.start, range.end);
      const end = Math.min(range?.end ?? size, size);
      // Positional reads into one buffer: readFile stops at 2 GiB, a buffer holds up to MAX_LENGTH.
      if (end - start > MAX_LENGTH) throw storeErrors.tooLarge(this.uri, key, end - start, MAX_LENGTH);
      const out = Buffer.allocUnsafe(end - start);
      let at = 0;
      while (at < out.length) {
        const { bytesRead } = await handle.read(out, at, Math.min(out.length - at, READ_CHUNK), start + at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return out.subarray(0, at);
    } finally {
      await handle.close();
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const s = await statOrNull(this.#pathOf(key));
    return s?.isFile() ? infoOf(key, s) : null;
  }

  async *list(prefix: string): AsyncIterable<ObjectInfo> {
    if (prefix.includes('..') || prefix.startsWith('/') || prefix.includes('\\')) {
      throw storeErrors.badKey(this.uri, prefix, "a list prefix is relative and has no '..'");
    }
    const baseKey = prefix.slice(0, prefix.lastIndexOf('/') + 1); // directory part, '' or 'a/b/'
    const keys: string[] = [];
    await walk(join(this.root, ...baseKey.split('/').filter(Boolean)), baseKey, keys);
    const matching = keys.filter((k) => k.startsWith(prefix));
    matching.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))); // S3's UTF-8 byte order
    for (const key of matching) {
      const s = await statOrNull(join(this.root, ...key.split('/')));
      if (s?.isFile()) yield infoOf(key, s);
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.#pathOf(key);
    try {
      await rm(path, { force: true });
    } catch (err) {
      throw storeErrors.io(this.uri, `deleting ${key}`, err);
    }
    await this.#pruneEmptyDirs(dirname(path));
  }

  #pathOf(key: string): string {
    assertKey(this.uri, key);
    return join(this.root, ...key.split('/'));
  }

  async #open(key: string, path: string) {
    try {
      return await open(path, 'r');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
        throw new ObjectNotFoundError(this.uri, key, { cause: err });
      }
      throw storeErrors.io(this.uri, `reading ${key}`, err);
    }
  }

  /** Writes `body` to a new temp file and syncs it; returns its stats. */
  async #writeTemp(tmp: string, body: Body): Promise<BigIntStats> {
    let handle: Awaited<ReturnType<typeof open>> | undefined;
    for (let attempt = 0; !handle; attempt++) {
      try {
        await mkdir(dirname(tmp), { recursive: true });
        handle = await open(tmp, 'wx');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || attempt >= MKDIR_RETRIES) throw err;
      }
    }
    try {
      for await (const chunk of bodyChunks(body)) {
        let at = 0;
        while (at < chunk.length) {
          const { bytesWritten } = await handle.write(chunk, at, chunk.length - at);
          at += bytesWritten;
        }
      }
      await handle.sync();
      return await handle.stat({ bigint: true });
    } finally {
      await handle.close();
    }
  }

  /** Removes directories left empty by a delete, up to (not including) the root. */
  async #pruneEmptyDirs(dir: string): Promise<void> {
    let d = dir;
    while (d.startsWith(this.root + sep)) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty, already gone, or not ours to remove
      }
      d = dirname(d);
    }
  }
}

function etagOf(s: BigIntStats): string {
  return `${s.ino.toString(16)}-${s.size.toString(16)}-${s.mtimeNs.toString(16)}`;
}

function infoOf(key: string, s: BigIntStats): ObjectInfo {
  return { key, size: Number(s.size), etag: etagOf(s), lastModified: new Date(Number(s.mtimeMs)) };
}

async function statOrNull(path: string): Promise<BigIntStats | null> {
  try {
    return await stat(path, { bigint: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw err;
  }
}

/** Makes a rename in `dir` durable. A directory already gone was emptied by a delete of what was just written: the put itself landed. */
async function fsyncDir(dir: string): Promise<void> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(dir, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

async function walk(dir: string, keyPrefix: string, out: string[]): Promise<void> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return;
    throw err;
  }
  for (const e of entries) {
    if (e.name.startsWith(RESERVED_PREFIX)) continue;
    if (e.isDirectory()) await walk(join(dir, e.name), `${keyPrefix}${e.name}/`, out);
    else if (e.isFile()) out.push(`${keyPrefix}${e.name}`);
  }
}
