/**
 * A per-key lock for the filesystem adapter: an exclusive-create lock file beside the object.
 *
 * `open(path, 'wx')` is atomic on local filesystems, so of several processes racing for one key
 * exactly one holds the lock; it is held only for the compare-and-rename of a put (microseconds
 * to milliseconds). A lock file older than `staleMs` can only be left by a crashed process and is
 * broken. Two processes breaking the same stale lock at the same instant is the one race this
 * scheme does not close; it needs a crash inside the rename window first.
 */
import { randomUUID } from 'node:crypto';
import { mkdir, open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { storeErrors } from './errors.ts';
import { RESERVED_PREFIX } from './keys.ts';

export interface LockTiming {
  /** Give up waiting after this long (ms). */
  readonly timeoutMs: number;
  /** A lock file older than this (ms) is from a crashed writer and is broken. */
  readonly staleMs: number;
}

/** Retry delay bounds while a lock is held by someone else: short, since holds are short. */
const MIN_POLL_MS = 2;
const MAX_POLL_MS = 50;

/** The lock file guarding the object at `path`. */
export function lockPathOf(path: string): string {
  return join(dirname(path), `${RESERVED_PREFIX}lock.${basename(path)}`);
}

/**
 * Takes the lock of the object at `path`; resolves to a release function.
 * Throws KVF_STORE_LOCKED after `timing.timeoutMs`.
 */
export async function lockKey(
  uri: string,
  key: string,
  path: string,
  timing: LockTiming,
): Promise<() => Promise<void>> {
  const lockPath = lockPathOf(path);
  const token = `${process.pid} ${hostname()} ${randomUUID()}`;
  const started = Date.now();
  let delay = MIN_POLL_MS;
  for (;;) {
    try {
      const handle = await open(lockPath, 'wx');
      try {
        await handle.writeFile(token);
      } finally {
        await handle.close();
      }
      return () => releaseLock(lockPath, token);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(dirname(lockPath), { recursive: true });
        continue;
      }
      if (code !== 'EEXIST') throw storeErrors.io(uri, `locking ${key}`, err);
    }
    if (await breakIfStale(lockPath, timing.staleMs)) continue;
    const waited = Date.now() - started;
    if (waited >= timing.timeoutMs) throw storeErrors.locked(uri, key, lockPath, waited);
    await sleep(delay * (0.5 + Math.random()));
    delay = Math.min(MAX_POLL_MS, delay * 2);
  }
}

async function breakIfStale(lockPath: string, staleMs: number): Promise<boolean> {
  try {
    const s = await stat(lockPath);
    if (Date.now() - s.mtimeMs < staleMs) return false;
    const aside = `${lockPath}.stale-${randomUUID()}`;
    await rename(lockPath, aside);
    await unlink(aside);
    return true;
  } catch (err) {
    // The holder released it meanwhile, or another waiter broke it first: try again either way.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
}

async function releaseLock(lockPath: string, token: string): Promise<void> {
  try {
    // Only remove our own lock: if it was broken as stale, a newer holder owns the file now.
    if ((await readFile(lockPath, 'utf8')) === token) await unlink(lockPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}
