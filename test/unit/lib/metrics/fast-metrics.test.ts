import { ServiceBroker } from "moleculer";
import {
  BUCKET_HISTOGRAM,
  LABELLED_COUNTER,
  labelKey,
  registerFastMetrics,
} from "../../../../lib/metrics/fast-metrics";

/** Two histograms fed the same observations: Moleculer's own and ours. */
function pair(extra: Record<string, unknown> = {}) {
  registerFastMetrics();
  const broker = new ServiceBroker({ logger: false, metrics: { enabled: true } });
  const metrics = broker.metrics!;
  const opts = { labelNames: ["model"], buckets: [1, 0.005, 0.1, 10, 0.5], ...extra };
  metrics.register({ type: "histogram", name: "theirs", ...opts });
  metrics.register({ type: BUCKET_HISTOGRAM as "histogram", name: "ours", ...opts });
  return { metrics, broker };
}

describe("BucketHistogram", () => {
  test("keeps exactly the state Moleculer's histogram keeps, and is listed as a histogram", () => {
    const { metrics } = pair();
    // on the bounds, between them, below the first, past the last; two label sets and none
    const values = [0, 0.005, 0.0051, 0.1, 0.3, 0.5, 1, 2, 10, 10.5, 1e6, 0.004];
    let t = 1_000;
    for (const [i, v] of values.entries()) {
      for (const labels of [{ model: "a" }, { model: i % 3 ? "b" : "a" }, undefined]) {
        t += 1;
        metrics.observe("theirs", v, labels, t);
        metrics.observe("ours", v, labels, t);
      }
    }
    const theirs = metrics.getMetric("theirs")!;
    const ours = metrics.getMetric("ours")!;
    expect(ours.type).toBe("histogram");
    expect(ours.snapshot()).toEqual(theirs.snapshot());
    expect(ours.snapshot().length).toBe(3);
  });

  test("with quantiles too", () => {
    const { metrics } = pair({ quantiles: [0.5, 0.99] });
    for (let i = 0; i < 200; i++) {
      metrics.observe("theirs", (i % 37) / 10, { model: "m" }, 5_000);
      metrics.observe("ours", (i % 37) / 10, { model: "m" }, 5_000);
    }
    expect(metrics.getMetric("ours")!.snapshot()).toEqual(metrics.getMetric("theirs")!.snapshot());
  });
});

describe("LabelledCounter", () => {
  test("counts as Moleculer's counter does, under the same label keys", () => {
    registerFastMetrics();
    const metrics = new ServiceBroker({ logger: false, metrics: { enabled: true } }).metrics!;
    const labelNames = ["model", "node", "status"];
    metrics.register({ type: "counter", name: "theirs", labelNames });
    metrics.register({ type: LABELLED_COUNTER as "counter", name: "ours", labelNames });
    const sets = [
      { model: "a", node: "n1", status: "200" },
      { model: "a", node: "", status: "404" },
      { model: "b", status: 500 },
      { model: "a", node: "n1", status: "200", extra: "ignored" },
    ];
    for (const [i, labels] of [...sets, ...sets, sets[0]].entries()) {
      metrics.increment("theirs", labels, i + 1, 7_000);
      metrics.increment("ours", labels, i + 1, 7_000);
    }
    const ours = metrics.getMetric("ours")!;
    expect(ours.type).toBe("counter");
    expect(ours.snapshot()).toEqual(metrics.getMetric("theirs")!.snapshot());
    expect(ours.snapshot().length).toBe(3);
  });

  test("labelKey is Moleculer's hashingLabels", () => {
    const metrics = new ServiceBroker({ logger: false, metrics: { enabled: true } }).metrics!;
    const names = ["a", "b", "c"];
    const theirs = metrics.register({ type: "counter", name: "plain", labelNames: names })!;
    for (const labels of [{}, { a: "x" }, { a: 1, b: true, c: "z|y" }, { b: null, c: 0 }, undefined]) {
      expect(labelKey(names, labels)).toBe(theirs.hashingLabels(labels));
    }
    expect(labelKey([], { a: "x" })).toBe("");
  });
});
