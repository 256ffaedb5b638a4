/**
 * A strict-enough well-formedness check for the SVG we write, used by the tests: every tag is
 * closed in order, attributes are quoted, and text holds no raw `<` or `&` outside entities.
 */
const TAG = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>/y;

/** Throws with the offset of the first problem; returns the element names in document order. */
export function checkSvg(svg: string): string[] {
  const stack: string[] = [];
  const names: string[] = [];
  let i = 0;
  while (i < svg.length) {
    const lt = svg.indexOf('<', i);
    const text = svg.slice(i, lt === -1 ? svg.length : lt);
    if (/&(?!amp;|lt;|gt;|quot;|#\d+;)/.test(text)) throw new Error(`raw & in text at ${i}`);
    if (lt === -1) break;
    TAG.lastIndex = lt;
    const m = TAG.exec(svg);
    if (!m) throw new Error(`malformed tag at ${lt}: ${svg.slice(lt, lt + 40)}`);
    const [, closing, name, , selfClosing] = m as unknown as [string, string, string, string, string];
    if (closing) {
      if (stack.pop() !== name) throw new Error(`</${name}> at ${lt} closes nothing open`);
    } else {
      names.push(name);
      if (!selfClosing) stack.push(name);
    }
    i = TAG.lastIndex;
  }
  if (stack.length) throw new Error(`unclosed <${stack.join('>, <')}>`);
  if (names[0] !== 'svg') throw new Error('the root element is not <svg>');
  return names;
}
