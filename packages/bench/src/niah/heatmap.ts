/**
 * The NIAH heatmap: exact match by context length (rows) and needle depth (columns), one cell per
 * (length, depth) with its percentage and trial count, coloured red (0%) to green (100%).
 */
import type { CellStats } from './report.ts';
import { matchColour, svgDocument, tokensLabel, xml } from './svg.ts';

const CELL_W = 88;
const CELL_H = 44;
const LEFT = 96; // room for the length labels and the y-axis title
const TOP = 64; // room for the title and the subtitle
const BOTTOM = 56; // depth labels and the x-axis title

export interface HeatmapInput {
  readonly title: string;
  readonly subtitle: string;
  readonly lengths: readonly number[];
  readonly depths: readonly number[];
  /** Stats of the cell at (length, depth), or undefined when the cell has no trials. */
  readonly cell: (length: number, depth: number) => CellStats | undefined;
}

export function heatmapSvg(input: HeatmapInput): string {
  const { lengths, depths } = input;
  const width = LEFT + depths.length * CELL_W + 24;
  const height = TOP + lengths.length * CELL_H + BOTTOM;
  const body: string[] = [
    `<text x="${LEFT}" y="22" font-size="15" font-weight="bold">${xml(input.title)}</text>`,
    `<text x="${LEFT}" y="42" font-size="11" fill="#444">${xml(input.subtitle)}</text>`,
  ];
  lengths.forEach((length, r) => {
    const y = TOP + r * CELL_H;
    body.push(`<text x="${LEFT - 8}" y="${y + CELL_H / 2 + 4}" font-size="12" text-anchor="end">${xml(tokensLabel(length))}</text>`);
    depths.forEach((depth, c) => {
      const x = LEFT + c * CELL_W;
      const s = input.cell(length, depth);
      if (!s) {
        body.push(`<rect x="${x}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="#eeeeee" stroke="#ffffff"/>`);
        body.push(`<text x="${x + CELL_W / 2}" y="${y + CELL_H / 2 + 4}" font-size="11" text-anchor="middle" fill="#888">n/a</text>`);
        return;
      }
      const pct = (100 * s.exact) / s.trials;
      body.push(
        `<rect x="${x}" y="${y}" width="${CELL_W}" height="${CELL_H}" fill="${matchColour(s.exact / s.trials)}" stroke="#ffffff"><title>${xml(`length ${length}, depth ${depth}: ${s.exact}/${s.trials} exact`)}</title></rect>`,
        `<text x="${x + CELL_W / 2}" y="${y + CELL_H / 2}" font-size="13" font-weight="bold" text-anchor="middle">${pct.toFixed(0)}%</text>`,
        `<text x="${x + CELL_W / 2}" y="${y + CELL_H / 2 + 14}" font-size="10" text-anchor="middle" fill="#333">${s.exact}/${s.trials}</text>`,
      );
    });
  });
  const axisY = TOP + lengths.length * CELL_H;
  depths.forEach((depth, c) => {
    body.push(`<text x="${LEFT + c * CELL_W + CELL_W / 2}" y="${axisY + 16}" font-size="12" text-anchor="middle">${xml(depth)}</text>`);
  });
  body.push(
    `<text x="${LEFT + (depths.length * CELL_W) / 2}" y="${axisY + 40}" font-size="12" text-anchor="middle">needle depth (0 = start of the haystack, 1 = just before the question)</text>`,
    `<text x="16" y="${TOP + (lengths.length * CELL_H) / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 16 ${TOP + (lengths.length * CELL_H) / 2})">context length (tokens)</text>`,
  );
  return svgDocument(width, height, input.title, body);
}
