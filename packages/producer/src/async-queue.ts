/**
 * A minimal push-to-pull bridge: event callbacks push values, one consumer awaits them in order.
 */

/** Unbounded FIFO that an async iterator drains; `end()` finishes it, `fail()` rejects the reader. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  readonly #items: T[] = [];
  #waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  #ended = false;
  #error: { error: unknown } | undefined;

  push(item: T): void {
    if (this.#ended) return;
    const waiting = this.#waiting;
    if (waiting) {
      this.#waiting = undefined;
      waiting.resolve({ value: item, done: false });
    } else this.#items.push(item);
  }

  end(): void {
    this.#ended = true;
    if (this.#waiting && this.#items.length === 0) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting.resolve({ value: undefined, done: true });
    }
  }

  fail(error: unknown): void {
    if (this.#error) return;
    this.#error = { error };
    this.#ended = true;
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.reject(error);
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.#items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.#error) return Promise.reject(this.#error.error);
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
