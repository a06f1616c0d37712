/**
 * The balancer's `explain`: for a model, which nodes a request would be sent
 * to now and why. Mirrors `balancer.pick` (the same candidates, the strategy's
 * own `explain`), reserving nothing. Pure, so it is tested without a broker.
 */
import type { NodeRecord } from "../cluster/types";
import { busyRatio, type Candidate, type CandidateScore, type Strategy } from "../strategies/types";

export interface ExplainInput {
  /** The router (balancer) answering: in-flight counts and latencies are per router. */
  router: string;
  model: string;
  strategy: Strategy;
  /** What `pick` would hand the strategy before the full-node filter (`balancer.eligible`). */
  candidates: Candidate[];
  /** Every node in the table. */
  nodes: NodeRecord[];
  /** IDs of the online, reachable, not draining nodes with the model. */
  serving: string[];
  draining(nodeID: string): boolean;
  benched(nodeID: string): boolean;
  /** Requests for this model waiting at this router now. */
  queued: number;
}

export interface ExplainedCandidate extends CandidateScore {
  machineName: string;
  active: number;
  capacity: number;
  /** Whether the strategy saw it (a strategy that does not see full nodes never sees a full one). */
  seen: boolean;
  chosen: boolean;
  note: string | null;
}

export interface RouteExplanation {
  router: string;
  model: string;
  strategy: string;
  rule: string;
  /** The node a request would go to (or wait for); null when it would wait for any, fail, or chance decides. */
  picked: string | null;
  /** What happens to a request for the model sent now, in words. */
  verdict: string;
  queued: number;
  candidates: ExplainedCandidate[];
  filtered: Array<{ nodeID: string; reason: string }>;
}

function whyNotServing(n: NodeRecord, input: ExplainInput): string {
  if (n.status === "offline") return "offline";
  if (n.status === "initializing") return "initializing (loading models)";
  if (input.draining(n.id)) return "draining";
  if (!input.serving.includes(n.id)) return "not reachable yet (its actions are not announced)";
  return "benched (failed repeatedly; used only when no other node is left)";
}

export function explainRoute(input: ExplainInput): RouteExplanation {
  const { model, strategy, candidates } = input;
  const withModel = input.nodes.filter((n) => n.models.some((m) => m.id === model));
  const ids = new Set(candidates.map((c) => c.nodeID));
  const filtered = withModel
    .filter((n) => !ids.has(n.id))
    .map((n) => ({ nodeID: n.id, reason: whyNotServing(n, input) }));
  const base = { router: input.router, model, strategy: strategy.name, queued: input.queued, filtered };

  if (candidates.length === 0) {
    const loading = withModel.some((n) => n.status === "initializing");
    const verdict = loading
      ? "wait: the model is still loading on a node"
      : withModel.length === 0
        ? `404 model_not_found: no node has '${model}'`
        : "503 no_available_node: no node is ready to serve it";
    return { ...base, rule: "no candidates", picked: null, verdict, candidates: [] };
  }

  const full = (c: Candidate) => busyRatio(c) >= 1;
  const pool = strategy.seesFullNodes ? candidates : candidates.filter((c) => !full(c));
  if (!strategy.seesFullNodes) {
    for (const c of candidates.filter(full)) {
      filtered.push({ nodeID: c.nodeID, reason: `full (${c.active + c.queued}/${c.capacity} slots busy)` });
    }
  }
  // the strategy's figures for every candidate, even when none has room (then none is picked)
  const ex = strategy.explain(pool.length ? pool : candidates, { model, waitingAhead: input.queued });
  const picked = pool.length ? ex.picked : null;
  const byID = new Map(candidates.map((c) => [c.nodeID, c]));
  const explained = ex.candidates.map((s): ExplainedCandidate => {
    const c = byID.get(s.nodeID)!;
    return {
      ...s,
      machineName: c.machineName,
      active: c.active + c.queued,
      capacity: c.capacity,
      seen: pool.includes(c),
      chosen: s.nodeID === picked,
      note: input.benched(c.nodeID) ? "benched, but no other node is left" : null,
    };
  });

  let verdict: string;
  if (!pool.length) verdict = "wait: every node with the model is full";
  else if (picked === null) verdict = "chance decides (see each node's probability)";
  else if (full(byID.get(picked)!)) verdict = `wait for a slot on ${picked}`;
  else verdict = `send to ${picked}`;
  if (input.queued > 0) verdict = `wait: ${input.queued} request(s) for this model queued ahead, then ${verdict}`;
  return { ...base, rule: ex.rule, picked, verdict, candidates: explained };
}
