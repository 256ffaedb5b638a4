/** Option parsers: each names the option and the bad value. */
import { InvalidArgumentError } from 'commander';

export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be an integer >= 1, got "${value}".`);
    return n;
  };
}

export function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be an integer >= 0, got "${value}".`);
    return n;
  };
}

/** A token count such as 16384, 16k or 1m. */
export function parseTokenCount(name: string, value: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(value.trim());
  if (!m) throw new InvalidArgumentError(`${name}: "${value}" is not a token count (e.g. 4096, 16k).`);
  const n = Number(m[1]) * (m[2] ? (m[2].toLowerCase() === 'k' ? 1024 : 1024 * 1024) : 1);
  if (n < 1) throw new InvalidArgumentError(`${name} must be >= 1, got "${value}".`);
  return n;
}

/** A comma-separated list, each item parsed by `item`. */
export function list<T>(name: string, item: (name: string, v: string) => T) {
  return (value: string): T[] =>
    value
      .split(',')
      .filter((s) => s.trim() !== '')
      .map((v) => item(name, v));
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}
