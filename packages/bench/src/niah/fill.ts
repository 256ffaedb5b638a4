/**
 * Filler to an exact token count from units of several lengths (sentences of prose), ending on a
 * whole unit whenever the lengths can make the count: far from the end units are drawn freely;
 * near it only units that leave a count the lengths can still make. Units of coprime lengths make
 * every count above the square of the longest, so only a haystack that short, or units whose
 * lengths share a factor, may end on a cut unit.
 */
import type { FillerUnit } from './protocol.ts';

/** `tokens` tokens of filler drawn from `units` with `random`, in order. */
export function fillExactly(units: readonly FillerUnit[], tokens: number, random: () => number): FillerUnit[] {
  const pick = <T>(from: readonly T[]): T => from[Math.floor(random() * from.length)] as T;
  const lengths = [...new Set(units.map((u) => u.length))].filter((n) => n > 0);
  const longest = Math.max(...lengths);
  // Every count above `free` is reachable when the lengths are coprime (Frobenius number < longest²).
  const free = longest * longest;
  const reachable = [true];
  for (let n = 1; n <= free + longest; n++) reachable[n] = lengths.some((l) => l <= n && reachable[n - l]);
  const out: FillerUnit[] = [];
  for (let left = tokens; left > 0; ) {
    const fits = left > free + longest ? units : units.filter((u) => u.length <= left && reachable[left - u.length]);
    const unit = fits.length > 0 ? pick(fits) : pick(units);
    const taken = unit.length <= left ? unit : unit.subarray(0, left); // no whole-unit ending: cut the last unit
    out.push(taken);
    left -= taken.length;
  }
  return out;
}
