/** Small helpers for the SVG figures the harnesses draw by hand (no plotting dependency). */

/** Escapes text for SVG content and attribute values. */
export function xml(text: string | number): string {
  return String(text).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Red (0) through yellow (0.5) to green (1): the colour scale of NIAH heatmaps. */
export function matchColour(fraction: number): string {
  const stops: [number, [number, number, number]][] = [
    [0, [215, 48, 39]],
    [0.5, [254, 224, 139]],
    [1, [26, 152, 80]],
  ];
  const f = Math.min(1, Math.max(0, fraction));
  const i = f <= 0.5 ? 0 : 1;
  const [x0, c0] = stops[i] as [number, [number, number, number]];
  const [x1, c1] = stops[i + 1] as [number, [number, number, number]];
  const t = (f - x0) / (x1 - x0);
  const hex = c0.map((v, k) => Math.round(v + ((c1[k] as number) - v) * t).toString(16).padStart(2, '0')).join('');
  return `#${hex}`;
}

/** A token count as people write it: 16384 -> 16K, 131072 -> 128K, 1000 -> 1000. */
export function tokensLabel(n: number): string {
  return n >= 1024 && n % 1024 === 0 ? `${n / 1024}K` : String(n);
}

/** An SVG document of the given size around `body`. */
export function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<title>${xml(title)}</title>`,
    `<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}
