/**
 * Writes one haystack: filler to an exact token count with needles placed at given depths.
 *
 * A needle's depth d in [0, 1] is the share of the haystack's filler that comes before it: 0 puts it
 * right after the document's first tokens (BOS), 1 right before the question. Needles that share a
 * depth sit together as a cluster, one filler unit apart, and the cluster is placed as one block.
 * Filler comes in units (a token, or a sentence of prose) and a needle never splits a unit; the
 * protocol fills to the exact count, in whole units where their lengths allow (fill.ts).
 */
import { NiahError } from './errors.ts';
import type { Needle, NiahProtocol } from './protocol.ts';
import { seededRandom } from '@kvfold/model-zoo';

/** Filler units between two needles of one cluster, so neighbours never touch. */
export const CLUSTER_GAP_UNITS = 1;

export interface PlacedNeedle {
  readonly needle: Needle;
  /** The depth asked for. */
  readonly depth: number;
  /** Index of the needle's first token in the document. */
  readonly position: number;
}

export interface Haystack {
  readonly tokens: Int32Array; // [document tokens]
  readonly needles: readonly PlacedNeedle[]; // in the order of `depths`
}

/**
 * A document of exactly `documentTokens` tokens holding one needle per entry of `depths`.
 * @param seed decides the needles' values and the filler
 */
export function writeHaystack(protocol: NiahProtocol, documentTokens: number, depths: readonly number[], seed: number): Haystack {
  const random = seededRandom(seed);
  const needles = protocol.needles(depths.length, random);
  const byDepth = new Map<number, number[]>();
  depths.forEach((d, i) => {
    byDepth.set(d, [...(byDepth.get(d) ?? []), i]);
  });
  const clusters = [...byDepth.entries()]
    .sort((a, b) => a[0] - b[0])
    .map(([depth, members]) => {
      const parts: { needle?: number; tokens: Int32Array }[] = [];
      members.forEach((m, j) => {
        if (j > 0) for (let g = 0; g < CLUSTER_GAP_UNITS; g++) parts.push({ tokens: protocol.filler(random) });
        parts.push({ needle: m, tokens: (needles[m] as Needle).tokens });
      });
      return { depth, parts, span: parts.reduce((n, p) => n + p.tokens.length, 0) };
    });
  const fillerTokens = documentTokens - protocol.prefix.length - clusters.reduce((n, c) => n + c.span, 0);
  if (fillerTokens < 0) {
    throw new NiahError('KVF_NIAH_BAD_GRID', `a document of ${documentTokens} tokens cannot hold ${depths.length} needles; use a longer length or fewer needles per haystack`);
  }
  // Filler to exactly fillerTokens tokens; `bounds` are the unit boundaries a needle may sit at.
  const filler = new Int32Array(fillerTokens);
  const bounds = [0];
  let at = 0;
  for (const unit of protocol.fill(fillerTokens, random)) {
    filler.set(unit, at);
    at += unit.length;
    bounds.push(at);
  }
  if (at !== fillerTokens) throw new Error(`the ${protocol.name} protocol filled ${at} of ${fillerTokens} tokens`);
  const tokens = new Int32Array(documentTokens);
  tokens.set(protocol.prefix, 0);
  let out = protocol.prefix.length;
  let from = 0;
  const placed: PlacedNeedle[] = [];
  for (const c of clusters) {
    const to = floorBound(bounds, Math.max(from, Math.round(c.depth * fillerTokens)));
    tokens.set(filler.subarray(from, to), out);
    out += to - from;
    from = to;
    for (const p of c.parts) {
      if (p.needle !== undefined) placed[p.needle] = { needle: needles[p.needle] as Needle, depth: c.depth, position: out };
      tokens.set(p.tokens, out);
      out += p.tokens.length;
    }
  }
  tokens.set(filler.subarray(from), out);
  return { tokens, needles: placed };
}

/** The largest boundary <= x (boundaries ascend from 0). */
function floorBound(bounds: readonly number[], x: number): number {
  let lo = 0;
  let hi = bounds.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if ((bounds[mid] as number) <= x) lo = mid;
    else hi = mid - 1;
  }
  return bounds[lo] as number;
}
