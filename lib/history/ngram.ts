/**
 * Trigram signatures for the text search of the embedded history index: each
 * record's lower-cased search text sets one bit of a 1024-bit signature per
 * trigram it holds. A needle can only be in a text whose signature has every
 * bit of the needle's trigrams, so the search runs `includes` on those texts
 * alone (about 0.5 % of the rest for a 7-character needle, at the 35 % fill
 * of a record of about 700 characters). Signatures live in one pooled
 * Uint32Array, a slot per record.
 */
export const SIG_BITS = 1024;
export const SIG_WORDS = SIG_BITS / 32;

/** The bit of the trigram that starts at `i`. */
function bit(s: string, i: number): number {
  let h =
    Math.imul(s.charCodeAt(i), 0x9e3779b1) ^
    Math.imul(s.charCodeAt(i + 1), 0x85ebca77) ^
    Math.imul(s.charCodeAt(i + 2), 0xc2b2ae3d);
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h & (SIG_BITS - 1);
}

/** What a needle needs of a signature: (word, mask) pairs; null under 3 characters (no trigram). */
export type NeedleBits = Array<[number, number]> | null;

export function needleBits(needle: string): NeedleBits {
  if (needle.length < 3) return null;
  const words = new Map<number, number>();
  for (let i = 0; i + 2 < needle.length; i++) {
    const b = bit(needle, i);
    words.set(b >>> 5, (words.get(b >>> 5) ?? 0) | (1 << (b & 31)));
  }
  return [...words];
}

/** Fixed-size signature slots in one growing array, with reuse of released slots. */
export class SigPool {
  words = new Uint32Array(SIG_WORDS * 1024);
  private next = 0;
  private readonly free: number[] = [];

  /** A slot holding the signature of `text`. */
  add(text: string): number {
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.next++;
      if (slot * SIG_WORDS >= this.words.length) {
        const grown = new Uint32Array(this.words.length * 2);
        grown.set(this.words);
        this.words = grown;
      }
    }
    const w = this.words;
    const off = slot * SIG_WORDS;
    w.fill(0, off, off + SIG_WORDS);
    for (let i = 0; i + 2 < text.length; i++) {
      const b = bit(text, i);
      w[off + (b >>> 5)] |= 1 << (b & 31);
    }
    return slot;
  }

  release(slot: number): void {
    this.free.push(slot);
  }

  /** Whether the text in `slot` may hold the needle (false: it surely does not). */
  mayHold(slot: number, need: NeedleBits): boolean {
    if (!need) return true;
    const w = this.words;
    const off = slot * SIG_WORDS;
    for (const [i, mask] of need) if ((w[off + i] & mask) !== mask) return false;
    return true;
  }

  /** Slots in use. */
  get used(): number {
    return this.next - this.free.length;
  }
}
