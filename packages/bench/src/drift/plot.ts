/**
 * The drift figure: per-step max-abs logit difference (top) and mean KL(reference ‖ folded)
 * (bottom) against the fold step, each on a log10 axis, drawn as SVG by hand.
 */
import { svgDocument, xml } from '../niah/svg.ts';
import type { DriftResult } from './drift.ts';

const WIDTH = 640;
const PANEL_H = 200;
const LEFT = 72;
const RIGHT = 24;
const TOP = 56;
const GAP = 56;
/** Values below this are drawn at it (an exact zero has no logarithm). */
const FLOOR = 1e-12;

interface Series {
  readonly label: string;
  readonly colour: string;
  readonly points: readonly [number, number][]; // [step, value]
}

function panel(series: Series, top: number, maxStep: number): string[] {
  const values = series.points.map(([, v]) => Math.log10(Math.max(FLOOR, v)));
  let lo = Math.floor(Math.min(...values));
  let hi = Math.ceil(Math.max(...values));
  if (hi === lo) [lo, hi] = [lo - 1, hi + 1];
  const plotW = WIDTH - LEFT - RIGHT;
  const x = (step: number) => LEFT + (maxStep <= 1 ? plotW / 2 : ((step - 1) / (maxStep - 1)) * plotW);
  const y = (v: number) => top + PANEL_H - ((Math.log10(Math.max(FLOOR, v)) - lo) / (hi - lo)) * PANEL_H;
  const out = [`<rect x="${LEFT}" y="${top}" width="${plotW}" height="${PANEL_H}" fill="none" stroke="#999"/>`];
  const every = Math.max(1, Math.ceil((hi - lo) / 6));
  for (let e = lo; e <= hi; e += every) {
    const yy = top + PANEL_H - ((e - lo) / (hi - lo)) * PANEL_H;
    out.push(`<line x1="${LEFT}" y1="${yy}" x2="${LEFT + plotW}" y2="${yy}" stroke="#eee"/>`, `<text x="${LEFT - 6}" y="${yy + 4}" font-size="10" text-anchor="end">1e${e}</text>`);
  }
  const path = series.points.map(([s, v], i) => `${i ? 'L' : 'M'}${x(s).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
  out.push(`<path d="${path}" fill="none" stroke="${series.colour}" stroke-width="1.5"/>`);
  for (const [s, v] of series.points) {
    out.push(`<circle cx="${x(s).toFixed(1)}" cy="${y(v).toFixed(1)}" r="2" fill="${series.colour}"><title>${xml(`step ${s}: ${v.toExponential(3)}`)}</title></circle>`);
  }
  out.push(`<text x="${LEFT}" y="${top - 8}" font-size="12" font-weight="bold">${xml(series.label)}</text>`);
  const ticks = [1, Math.ceil(maxStep / 2), maxStep].filter((v, i, a) => a.indexOf(v) === i);
  for (const t of ticks) out.push(`<text x="${x(t)}" y="${top + PANEL_H + 14}" font-size="10" text-anchor="middle">${t}</text>`);
  return out;
}

export function driftSvg(result: DriftResult, modelLabel: string): string {
  const compared = result.steps.filter((s) => s.maxAbs !== undefined);
  const maxStep = Math.max(1, ...compared.map((s) => s.step));
  const height = TOP + 2 * PANEL_H + GAP + 48;
  const title = `Per-step drift, folded vs. single pass (${result.tokens} tokens, chunk ${result.chunkSize}, ${result.kv} KV)`;
  const body = [
    `<text x="${LEFT}" y="20" font-size="14" font-weight="bold">${xml(title)}</text>`,
    `<text x="${LEFT}" y="38" font-size="11" fill="#444">${xml(`${modelLabel}; reference: one pass over the first ${result.reference.tokens} tokens`)}</text>`,
    ...panel({ label: 'max |folded − reference| logit', colour: '#2b6cb0', points: compared.map((s) => [s.step, s.maxAbs as number]) }, TOP, maxStep),
    ...panel({ label: 'mean KL(reference ‖ folded), nats', colour: '#c05621', points: compared.map((s) => [s.step, s.meanKl as number]) }, TOP + PANEL_H + GAP, maxStep),
    `<text x="${LEFT + (WIDTH - LEFT - RIGHT) / 2}" y="${height - 12}" font-size="12" text-anchor="middle">fold step</text>`,
  ];
  return svgDocument(WIDTH, height, title, body);
}
