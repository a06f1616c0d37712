/**
 * The embedded store's in-memory index of history records: one light entry a
 * record (the fields filters, stats and paging read, and a reference to the
 * stored document's own lower-cased search text), oldest first by (ts, id).
 * Lists, counts, keyset pages and the last hour are read from it without a
 * scan of the store or a sort; only the page's documents are then fetched by
 * `_id`. Retention and the cap drop entries from the old end.
 */
import { needleBits, SigPool } from "./ngram";
import type { HistoryFilter } from "./query";
import { searchText, textOf } from "./query";
import type { HistoryRecord } from "./record";

export interface IndexEntry {
  /** The store's id of the document. */
  _id: string;
  id: string;
  ts: number;
  model: string | null;
  node_id: string | null;
  kind: string;
  status: number;
  duration_ms: number;
  ttft_ms: number | null;
  tokens_out: number | null;
  /** The lower-cased text `q` searches (the stored document's string, not a copy). */
  text: string;
  /** Its trigram signature's slot in the index's pool; -1 while not yet computed, -2 once dropped. */
  sig: number;
}

/** A stored document as the index reads it. */
export type StoredDoc = Pick<
  HistoryRecord,
  "id" | "ts" | "model" | "node_id" | "kind" | "status" | "duration_ms" | "ttft_ms" | "tokens_out"
> &
  Partial<Pick<HistoryRecord, "request_body" | "response_body">> & {
    _id?: unknown;
    search_text?: string;
    request_json?: string;
    response_json?: string;
  };

export function entryOf(d: StoredDoc): IndexEntry {
  return {
    _id: String(d._id),
    id: d.id,
    ts: d.ts,
    model: d.model,
    node_id: d.node_id,
    kind: d.kind,
    status: d.status,
    duration_ms: d.duration_ms,
    ttft_ms: d.ttft_ms,
    tokens_out: d.tokens_out,
    text:
      typeof d.search_text === "string"
        ? d.search_text
        : d.request_json !== undefined
          ? textOf(d.request_json, d.response_json)
          : searchText(d.request_body, d.response_body),
    sig: -1,
  };
}

/** Whether `a` comes before `b` in (ts, id) order. */
function before(a: { ts: number; id: string }, b: { ts: number; id: string }): boolean {
  return a.ts < b.ts || (a.ts === b.ts && a.id < b.id);
}

export type EntryFilter = Pick<HistoryFilter, "model" | "node" | "kind" | "status" | "from" | "to" | "q">;

export class HistoryIndex {
  /** Oldest first by (ts, id); positions [head, length) are live. */
  private list: IndexEntry[] = [];
  private head = 0;
  private readonly byId = new Map<string, IndexEntry>();
  private unsigned: IndexEntry[] = [];
  /** One string object per model, node and kind name, shared by the entries (see `intern`). */
  private names = new Map<string, string>();
  readonly sigs = new SigPool();

  get size(): number {
    return this.list.length - this.head;
  }

  /**
   * The shared copy of a name: documents read from the file each hold their own
   * copy of every string, and comparing (and reaching) 100,000 separate copies
   * is several times slower than one. Only an optimisation: the table is
   * dropped if clients make it large (a 404's model is whatever they sent).
   */
  private intern<T extends string | null>(s: T): T {
    if (s === null) return s;
    const known = this.names.get(s);
    if (known !== undefined) return known as T;
    if (this.names.size >= 10_000) this.names = new Map();
    this.names.set(s, s);
    return s;
  }

  private shared(e: IndexEntry): IndexEntry {
    e.model = this.intern(e.model);
    e.node_id = this.intern(e.node_id);
    e.kind = this.intern(e.kind);
    return e;
  }

  /** Replaces the contents with these documents' entries (their signatures come later: `signSome`). */
  load(docs: Iterable<StoredDoc>): void {
    const list: IndexEntry[] = [];
    for (const d of docs) list.push(this.shared(entryOf(d)));
    list.sort((a, b) => (before(a, b) ? -1 : before(b, a) ? 1 : 0));
    this.list = list;
    this.head = 0;
    this.byId.clear();
    for (const e of list) this.byId.set(e.id, e);
    this.unsigned = list.slice().reverse();
  }

  /** Entries dropped before their signature was computed are not kept waiting for one. */
  private forgetDropped(): void {
    if (this.unsigned.length > this.size + 1024) this.unsigned = this.unsigned.filter((e) => e.sig === -1);
  }

  /** Computes up to `max` missing signatures (newest first); the number still missing. */
  signSome(max: number): number {
    for (let n = 0; n < max && this.unsigned.length;) {
      const e = this.unsigned.pop()!;
      if (e.sig !== -1) continue;
      e.sig = this.sigs.add(e.text);
      n++;
    }
    return this.unsigned.length;
  }

  /**
   * Entries of stored documents. Their signatures come later (`signSome`,
   * which the store runs after a search): a search checks an entry without
   * one by its text alone, and a router nobody searches never computes them
   * (about 3 % of a request's CPU, bench/RESULTS.md session 15).
   */
  add(entries: IndexEntry[]): void {
    const list = this.list;
    for (const e of entries) {
      this.shared(e);
      if (e.sig === -1) this.unsigned.push(e);
      this.byId.set(e.id, e);
      if (list.length === this.head || !before(e, list[list.length - 1])) {
        list.push(e);
        continue;
      }
      // out of order (a request that took longer than later ones): after the last entry before it
      let lo = this.head;
      let hi = list.length;
      while (lo < hi) {
        const m = (lo + hi) >>> 1;
        if (before(e, list[m])) hi = m;
        else lo = m + 1;
      }
      list.splice(lo, 0, e);
    }
  }

  get(id: string): IndexEntry | undefined {
    return this.byId.get(id);
  }

  /** Drops the `n` oldest entries and returns them. */
  dropOldest(n: number): IndexEntry[] {
    const k = Math.max(0, Math.min(n, this.size));
    const out = this.list.slice(this.head, this.head + k);
    for (const e of out) {
      if (e.sig >= 0) this.sigs.release(e.sig);
      e.sig = -2;
      if (this.byId.get(e.id) === e) this.byId.delete(e.id);
    }
    this.list.fill(undefined as unknown as IndexEntry, this.head, this.head + k);
    this.head += k;
    this.forgetDropped();
    if (this.head > 1024 && this.head * 2 > this.list.length) {
      this.list = this.list.slice(this.head);
      this.head = 0;
    }
    return out;
  }

  /** Drops the entries older than `ts` and returns them. */
  dropBefore(ts: number): IndexEntry[] {
    return this.dropOldest(this.lowerBound(ts) - this.head);
  }

  /** Entries from `ts` on, oldest first. */
  since(ts: number): IndexEntry[] {
    return this.list.slice(this.lowerBound(ts));
  }

  /**
   * The filter's matches, newest first: `limit` of them from `offset`, and how
   * many there are in all.
   */
  select(f: EntryFilter, offset: number, limit: number): { entries: IndexEntry[]; total: number } {
    const [lo, hi] = this.range(f);
    const match = this.matcher(f);
    const entries: IndexEntry[] = [];
    if (!match) {
      for (let p = hi - 1 - offset; p >= lo && entries.length < limit; p--) entries.push(this.list[p]);
      return { entries, total: Math.max(0, hi - lo) };
    }
    let total = 0;
    const end = offset + limit;
    for (let p = hi - 1; p >= lo; p--) {
      const e = this.list[p];
      if (!match(e)) continue;
      if (total >= offset && total < end) entries.push(e);
      total++;
    }
    return { entries, total };
  }

  /** The next `limit` matches after a (ts, id) cursor, newest first (keyset paging). */
  after(f: EntryFilter, cursor: { ts: number; id: string } | undefined, limit: number): IndexEntry[] {
    const [lo, top] = this.range(f);
    let hi = top;
    if (cursor) {
      // the first entry not before the cursor: everything under it comes after the cursor, newest first
      let a = this.head;
      let b = this.list.length;
      while (a < b) {
        const m = (a + b) >>> 1;
        if (before(this.list[m], cursor)) a = m + 1;
        else b = m;
      }
      hi = Math.min(hi, a);
    }
    const match = this.matcher(f);
    const out: IndexEntry[] = [];
    for (let p = hi - 1; p >= lo && out.length < limit; p--) {
      const e = this.list[p];
      if (!match || match(e)) out.push(e);
    }
    return out;
  }

  /** The first live position whose ts is at least `ts` (or, `past`, above it). */
  private lowerBound(ts: number, past = false): number {
    let lo = this.head;
    let hi = this.list.length;
    while (lo < hi) {
      const m = (lo + hi) >>> 1;
      const t = this.list[m].ts;
      if (t < ts || (past && t === ts)) lo = m + 1;
      else hi = m;
    }
    return lo;
  }

  /** Positions [lo, hi) within the filter's from/to. */
  private range(f: EntryFilter): [number, number] {
    const lo = f.from !== undefined ? this.lowerBound(f.from) : this.head;
    const hi = f.to !== undefined ? this.lowerBound(f.to, true) : this.list.length;
    return [lo, Math.max(lo, hi)];
  }

  /** The test of the filter's other conditions, null when there are none. */
  private matcher(f: EntryFilter): ((e: IndexEntry) => boolean) | null {
    const { status } = f;
    // the shared copies: a match is then the same object
    const named = (v: string | undefined) => (v === undefined ? v : (this.names.get(v) ?? v));
    const model = named(f.model);
    const node = named(f.node);
    const kind = named(f.kind);
    const needle = f.q ? f.q.toLowerCase() : null;
    if (model === undefined && node === undefined && kind === undefined && status === undefined && needle === null) {
      return null;
    }
    const bits = needle === null ? null : needleBits(needle);
    const sigs = this.sigs;
    return (e) =>
      (model === undefined || e.model === model) &&
      (node === undefined || e.node_id === node) &&
      (kind === undefined || e.kind === kind) &&
      (status === undefined ||
        (status === "success" ? e.status < 400 : status === "error" ? e.status >= 400 : e.status === status)) &&
      (needle === null || ((e.sig < 0 || sigs.mayHold(e.sig, bits)) && e.text.includes(needle)));
  }
}
