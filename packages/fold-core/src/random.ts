/**
 * mulberry32: a small seeded 32-bit generator of floats in [0, 1), for reproducible choices
 * (sampled answers, NIAH haystacks, the recall protocol's filler). The same seed gives the same
 * sequence on every machine.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}
