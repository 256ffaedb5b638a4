/**
 * Session-thread state of a cache under a device session ('resident' plan): the presents the last
 * step returned stay where the session put them (on the GPU with WebGPU) and are fed back as the
 * next past; the host keeps the rows too (the KvBuffer), from the new-row outputs, for checkpoints,
 * resumes and policies. Whenever the device copy cannot be the past (after a resume, an eviction, a
 * quantization, a rewind to an unpinned point), it is dropped and the next step uploads the host
 * rows once.
 *
 * A mark pins the presents of that moment, so a question's rewind restores them without an
 * upload; the pinned presents and the question's own are both held while it is answered.
 */
import type { KvBuffer } from '@kvfold/fold-core';
import type * as ort from 'onnxruntime-node';

type Presents = { key: ort.Tensor; value: ort.Tensor }[]; // [layers]

interface Resident {
  /** The presents of the last step, or null when the next step must upload the host rows. */
  presents: Presents | null;
  /** Rows they hold. */
  length: number;
  /** Presents pinned by marks, by length. */
  readonly pinned: Map<number, Presents>;
}

const states = new WeakMap<KvBuffer, Resident>();

function stateOf(buffer: KvBuffer): Resident {
  let s = states.get(buffer);
  if (!s) {
    s = { presents: null, length: 0, pinned: new Map() };
    states.set(buffer, s);
  }
  return s;
}

function dispose(p: Presents | null, s: Resident): void {
  if (!p || [...s.pinned.values()].includes(p)) return;
  for (const l of p) {
    l.key.dispose();
    l.value.dispose();
  }
}

/** The device presents to feed as the past, when they hold exactly the cache's rows. */
export function residentPast(buffer: KvBuffer): Presents | null {
  const s = stateOf(buffer);
  return s.presents && s.length === buffer.length ? s.presents : null;
}

/** After a step: the presents it returned are the cache now. */
export function keepPresents(buffer: KvBuffer, presents: Presents): void {
  const s = stateOf(buffer);
  if (s.presents !== presents) dispose(s.presents, s);
  s.presents = presents;
  s.length = buffer.length;
}

/** A mark: the current presents are kept until a rewind past them or a release. */
export function pinPresents(buffer: KvBuffer): void {
  const s = stateOf(buffer);
  if (s.presents && s.length === buffer.length) s.pinned.set(buffer.length, s.presents);
}

/** After a rewind to `length`: pinned presents of that length come back; later pins are dropped. */
export function rewoundTo(buffer: KvBuffer, length: number): void {
  const s = stateOf(buffer);
  const back = s.pinned.get(length) ?? null;
  for (const [at, p] of [...s.pinned]) {
    if (at <= length) continue;
    s.pinned.delete(at);
    if (p !== back && p !== s.presents) dispose(p, s);
  }
  if (s.presents !== back) dispose(s.presents, s);
  s.presents = back;
  s.length = back ? length : 0;
}

/** After an edit of the host rows (append, evict, quantize): the device copy is stale. */
export function invalidate(buffer: KvBuffer): void {
  const s = stateOf(buffer);
  const all = [s.presents, ...s.pinned.values()];
  s.pinned.clear();
  for (const p of new Set(all)) dispose(p, s);
  s.presents = null;
  s.length = 0;
}
