/**
 * The checkpoint garbage a store can hold after crashes, lost races and failed cleanups, swept:
 *
 *   - objects under a document's folder that its manifest does not list (a segment uploaded by an
 *     attempt that died before its manifest commit, or by a writer that lost the document), and
 *     every object of a folder without a manifest;
 *   - the whole checkpoint of a document that has a completed result (its cleanup failed), unless
 *     its manifest is a kept final state (`--keep-final`).
 *
 * Only objects older than the grace age are touched, so a live writer's fresh segment, not yet in
 * its manifest, is never removed; a whole checkpoint is removed only when its manifest, too, is
 * older than the grace age.
 */
import type { ObjectInfo, ObjectStore } from '@kvfold/storage';
import { deleteCheckpoint } from './checkpoint-writer.ts';
import { manifestKey } from './keys.ts';
import { readManifest } from './load-checkpoint.ts';

export interface SweepOptions {
  /** The prefix checkpoints live under (the runner's `checkpoints`). */
  readonly prefix: string;
  /** Objects younger than this are left alone (ms). */
  readonly graceMs: number;
  /** Whether the document of a checkpoint folder has a completed result: its checkpoint is then removed whole. */
  readonly completed?: (docKey: string) => Promise<boolean>;
  /** Report what would be removed without removing it. */
  readonly dryRun?: boolean;
  /** The time the grace age counts back from (default now). */
  readonly now?: Date;
}

export interface SweepReport {
  /** Checkpoint folders looked at. */
  readonly folders: number;
  /** Whole checkpoints removed, their documents completed. */
  readonly completedRemoved: number;
  /** Objects no manifest lists, removed (or, in a dry run, to remove). */
  readonly unlistedRemoved: number;
  readonly bytesRemoved: number;
  /** Objects left because they are younger than the grace age. */
  readonly youngKept: number;
}

/** Sweeps the checkpoints under `options.prefix` of `store`; see the module comment. */
export async function sweepCheckpoints(store: ObjectStore, options: SweepOptions): Promise<SweepReport> {
  const prefix = options.prefix.replace(/^\/+|\/+$/g, '');
  const root = prefix ? `${prefix}/` : '';
  const cutoff = (options.now ?? new Date()).getTime() - options.graceMs;
  const old = (o: ObjectInfo) => o.lastModified !== undefined && o.lastModified.getTime() <= cutoff;
  const folders = new Map<string, ObjectInfo[]>();
  for await (const o of store.list(root)) {
    const rest = o.key.slice(root.length);
    const cut = rest.search(/\/(manifest\.json|segments\/|extra\/)/);
    if (cut <= 0) continue; // not a checkpoint object
    const docKey = rest.slice(0, cut);
    const list = folders.get(docKey) ?? [];
    list.push(o);
    folders.set(docKey, list);
  }
  let completedRemoved = 0;
  let unlistedRemoved = 0;
  let bytesRemoved = 0;
  let youngKept = 0;
  const remove = async (objects: readonly ObjectInfo[]) => {
    for (const o of objects) {
      if (!options.dryRun) await store.delete(o.key);
      bytesRemoved += o.size;
    }
  };
  for (const [docKey, objects] of folders) {
    const loc = { prefix, docKey };
    const manifestObject = objects.find((o) => o.key === manifestKey(loc));
    const stored = manifestObject ? await readManifest(store, loc).catch(() => null) : null;
    if (stored && !stored.manifest.final && manifestObject && old(manifestObject) && (await options.completed?.(docKey))) {
      if (!options.dryRun) await deleteCheckpoint(store, loc);
      bytesRemoved += objects.reduce((sum, o) => sum + o.size, 0);
      completedRemoved++;
      continue;
    }
    const listed = new Set(stored ? [manifestKey(loc), ...stored.manifest.segments.map((s) => s.key), ...(stored.manifest.extra ? [stored.manifest.extra.key] : [])] : []);
    // A manifest that cannot be read is left, with what it may list, for the loader to judge.
    if (manifestObject && !stored) continue;
    const unlisted = objects.filter((o) => !listed.has(o.key));
    const removable = unlisted.filter(old);
    youngKept += unlisted.length - removable.length;
    await remove(removable);
    unlistedRemoved += removable.length;
  }
  return { folders: folders.size, completedRemoved, unlistedRemoved, bytesRemoved, youngKept };
}
