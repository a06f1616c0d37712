/** Overview: the cluster's cards and the last hour's charts. */
import { api } from "../api.js";
import { h, mount, fmtMs, fmtNum, toast } from "../dom.js";
import { lineChart, minuteLabel } from "../charts.js";
import * as live from "../live.js";

function card(label, value, sub) {
  return h(
    "div",
    { class: "card stat" },
    h("div", { class: "stat-label" }, label),
    h("div", { class: "stat-value" }, value),
    sub ? h("div", { class: "stat-sub muted" }, sub) : null,
  );
}

function gpuUtilisation(nodes) {
  const gpus = nodes.filter((n) => n.status === "online").flatMap((n) => n.gpus.filter((g) => g.utilization !== null));
  if (!gpus.length) return { value: "–", sub: "no GPUs reporting" };
  const mean = gpus.reduce((a, g) => a + g.utilization, 0) / gpus.length;
  return { value: `${Math.round(mean)} %`, sub: `${gpus.length} GPU${gpus.length > 1 ? "s" : ""}` };
}

export function render(main) {
  const cards = h("section", { class: "cards", "aria-label": "Cluster summary" });
  const reqCanvas = h("canvas", { "aria-label": "Requests per minute, last hour", role: "img" });
  const latCanvas = h("canvas", { "aria-label": "Latency per minute, last hour", role: "img" });
  mount(
    main,
    h("h1", {}, "Overview"),
    cards,
    h(
      "section",
      { class: "charts" },
      h(
        "div",
        { class: "card chart" },
        h("h2", {}, "Requests per minute"),
        h("div", { class: "chart-box" }, reqCanvas),
      ),
      h(
        "div",
        { class: "card chart" },
        h("h2", {}, "Latency (median per minute)"),
        h("div", { class: "chart-box" }, latCanvas),
      ),
    ),
  );
  const reqChart = lineChart(
    reqCanvas,
    [
      { label: "success", color: "--ok" },
      { label: "error", color: "--bad" },
    ],
    { stacked: true, bars: true },
  );
  const latChart = lineChart(latCanvas, [
    { label: "latency p50 (ms)", color: "--accent" },
    { label: "time to first token p50 (ms)", color: "--warn" },
  ]);

  let nodes = [];
  let overview = null;
  const drawCards = () => {
    if (!overview) return;
    const o = overview;
    const hour = o.last_hour;
    const gpu = gpuUtilisation(nodes);
    mount(
      cards,
      card(
        "Nodes online",
        `${o.nodes.online} / ${o.nodes.total}`,
        o.nodes.draining ? `${o.nodes.draining} draining` : `${o.models} model${o.models === 1 ? "" : "s"}`,
      ),
      card("Requests (1 h)", fmtNum(hour.total_requests), `${fmtNum(hour.error_requests)} errors`),
      card("Median latency", fmtMs(hour.latency_ms.p50), `p99 ${fmtMs(hour.latency_ms.p99)}`),
      card("Time to first token", fmtMs(hour.ttft_ms.p50), `p99 ${fmtMs(hour.ttft_ms.p99)}`),
      card("Tokens/s", fmtNum(hour.tokens_per_second, 1), `${fmtNum(hour.tokens_out)} tokens out`),
      card("GPU utilisation", gpu.value, gpu.sub),
      card("Active / capacity", `${o.active_requests} / ${o.capacity}`, `${o.queued_requests} queued`),
    );
  };

  let alive = true;
  const load = async () => {
    try {
      const [o, stats, n] = await Promise.all([
        api.get("/api/dashboard/overview"),
        api.get("/api/dashboard/stats"),
        api.get("/api/nodes"),
      ]);
      overview = o;
      nodes = n;
      drawCards();
      const per = stats.per_minute;
      reqChart.update(
        per.map((m) => minuteLabel(m.minute)),
        [per.map((m) => m.success), per.map((m) => m.error)],
      );
      latChart.update(
        per.map((m) => minuteLabel(m.minute)),
        [per.map((m) => m.latency_p50_ms ?? null), per.map((m) => m.ttft_p50_ms ?? null)],
      );
    } catch (err) {
      if (alive) toast(`Could not load the overview: ${err.message}`, "error");
    }
  };
  load();
  // a finished request refreshes the numbers, at most every 5 s; nothing is polled faster than 30 s
  let pending = null;
  const offRequest = live.on("request", () => {
    pending ??= setTimeout(() => {
      pending = null;
      load();
    }, 5000);
  });
  const offNodes = live.on("nodes", (n) => {
    nodes = n;
    if (overview) {
      overview.nodes.online = n.filter((x) => x.status === "online").length;
      overview.nodes.total = n.length;
      overview.active_requests = n.reduce((a, x) => a + (x.status === "online" ? x.active_requests : 0), 0);
    }
    drawCards();
  });
  const timer = setInterval(load, 30_000);
  return () => {
    alive = false;
    clearInterval(timer);
    clearTimeout(pending);
    offRequest();
    offNodes();
    reqChart.destroy();
    latChart.destroy();
  };
}
