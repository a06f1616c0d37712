/**
 * Circuit breaking per node: after `threshold` failures in a row a node is
 * benched for `cooldownMs`, then tried again (one more failure benches it
 * again at once). Time comes in as arguments.
 */
export class NodeHealth {
  private readonly failures = new Map<string, number>();
  private readonly benchedUntil = new Map<string, number>();
  /** The latest time any node was benched until (a bench lifted early leaves it: `anyBenched` errs to true). */
  private latestUntil = 0;

  constructor(
    private readonly threshold: number,
    private readonly cooldownMs: number,
  ) {}

  success(nodeID: string): void {
    this.failures.delete(nodeID);
    this.benchedUntil.delete(nodeID);
  }

  /** Counts a failure; returns true when this one benched the node. */
  failure(nodeID: string, now = Date.now()): boolean {
    const n = (this.failures.get(nodeID) ?? 0) + 1;
    this.failures.set(nodeID, n);
    if (n >= this.threshold) {
      this.benchedUntil.set(nodeID, now + this.cooldownMs);
      this.latestUntil = Math.max(this.latestUntil, now + this.cooldownMs);
      this.failures.set(nodeID, this.threshold - 1);
      return true;
    }
    return false;
  }

  isBenched(nodeID: string, now = Date.now()): boolean {
    const until = this.benchedUntil.get(nodeID);
    return until !== undefined && now < until;
  }

  /** False when no node is benched at `now` (may say true when none is: ask `isBenched` per node). */
  anyBenched(now = Date.now()): boolean {
    return now < this.latestUntil && this.benchedUntil.size > 0;
  }

  benched(now = Date.now()): string[] {
    return [...this.benchedUntil].filter(([, until]) => now < until).map(([id]) => id);
  }
}
