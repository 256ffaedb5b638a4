/**
 * Where a document's checkpoint objects live in a store:
 *
 *     <prefix>/<docKey>/manifest.json
 *     <prefix>/<docKey>/segments/<stepFrom>-<stepTo>-<sha256>.kvf    (steps zero-padded)
 *     <prefix>/<docKey>/extra/<step>-<sha256>.bin
 */
import { checkpointErrors } from './errors.ts';

/** Step numbers are padded so that key order is step order. */
const STEP_DIGITS = 10;

/** Which document, under which store prefix. */
export interface DocLocation {
  /** Key prefix inside the store, e.g. `checkpoints`; '' for the store root. */
  readonly prefix?: string;
  /** The document's key: letters, digits, '.', '_', '-', '=' and '/' between segments. */
  readonly docKey: string;
}

const DOC_KEY = /^[A-Za-z0-9._=-]+(\/[A-Za-z0-9._=-]+)*$/;

/** The `<prefix>/<docKey>/` folder of a document. */
export function docFolder(loc: DocLocation): string {
  if (!DOC_KEY.test(loc.docKey) || loc.docKey.split('/').some((s) => s === '.' || s === '..')) {
    throw checkpointErrors.badState(`document key ${JSON.stringify(loc.docKey)} is not a safe key (letters, digits, . _ - = and /)`);
  }
  const prefix = (loc.prefix ?? '').replace(/^\/+|\/+$/g, '');
  return prefix ? `${prefix}/${loc.docKey}/` : `${loc.docKey}/`;
}

export const manifestKey = (loc: DocLocation) => `${docFolder(loc)}manifest.json`;

const pad = (n: number) => String(n).padStart(STEP_DIGITS, '0');

export const segmentKey = (loc: DocLocation, stepFrom: number, stepTo: number, sha256: string) =>
  `${docFolder(loc)}segments/${pad(stepFrom)}-${pad(stepTo)}-${sha256}.kvf`;

export const extraKey = (loc: DocLocation, step: number, sha256: string) =>
  `${docFolder(loc)}extra/${pad(step)}-${sha256}.bin`;

/** A key as a URI under its store, for messages: `file:///ck/checkpoints/doc/manifest.json`. */
export function objectUri(store: { readonly uri: string }, key: string): string {
  return `${store.uri.replace(/\/+$/, '')}/${key}`;
}
