/**
 * Documents folded at once share one process's memory: each holds a KV cache. The gate admits a
 * document's cache when the caches already admitted and it fit the budget together, and otherwise
 * holds it until enough of them are released. A cache that is alone is always admitted (the
 * session's memory guard then decides, and its refusal names rows and bytes), so a document that
 * fits alone never fails for the company it was folded in.
 */
import { freemem } from 'node:os';

/** Share of the memory available at start that the gate lets caches take together. */
const BUDGET_SHARE = 0.8;

export class CacheAdmission {
  #held = 0;
  #live = 0;
  readonly #waiting: { bytes: number; admit: () => void }[] = [];

  /** `budgetBytes`: what the caches of documents folded at once may take together (default: 80% of the memory free now). */
  constructor(readonly budgetBytes: number = freemem() * BUDGET_SHARE) {}

  /** Bytes admitted and not yet released. */
  get heldBytes(): number {
    return this.#held;
  }

  /** Waits until a cache of `bytes` may be allocated; call the returned function when it is released. */
  async admit(bytes: number): Promise<() => void> {
    if (this.#fits(bytes) && this.#waiting.length === 0) this.#take(bytes);
    else await new Promise<void>((admit) => this.#waiting.push({ bytes, admit }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#held -= bytes;
      this.#live--;
      this.#wake();
    };
  }

  #take(bytes: number): void {
    this.#held += bytes;
    this.#live++;
  }

  #fits(bytes: number): boolean {
    return this.#live === 0 || this.#held + bytes <= this.budgetBytes;
  }

  /** Admits waiting caches in order while the first of them fits. */
  #wake(): void {
    while (this.#waiting.length > 0 && this.#fits((this.#waiting[0] as { bytes: number }).bytes)) {
      const next = this.#waiting.shift() as { bytes: number; admit: () => void };
      this.#take(next.bytes);
      next.admit();
    }
  }
}
