/** Chart.js (served from node_modules at /dashboard/vendor/) with the theme's colours. */
const Chart = window.Chart;

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function baseOptions() {
  const text = css("--muted");
  const grid = css("--border");
  return {
    responsive: true,
    maintainAspectRatio: false,
    animation: false,
    interaction: { mode: "index", intersect: false },
    plugins: { legend: { labels: { color: text, boxWidth: 12 } } },
    scales: {
      x: { ticks: { color: text, maxTicksLimit: 8 }, grid: { color: grid } },
      y: { ticks: { color: text }, grid: { color: grid }, beginAtZero: true },
    },
  };
}

/** A chart on `canvas`; `update(labels, series)` redraws it in place. */
export function lineChart(canvas, seriesDefs, { stacked = false, bars = false, yMax } = {}) {
  const options = baseOptions();
  if (stacked) {
    options.scales.x.stacked = true;
    options.scales.y.stacked = true;
  }
  if (yMax !== undefined) options.scales.y.max = yMax;
  const chart = new Chart(canvas, {
    type: bars ? "bar" : "line",
    data: {
      labels: [],
      datasets: seriesDefs.map((d) => ({
        label: d.label,
        data: [],
        borderColor: css(d.color),
        backgroundColor: css(d.color),
        borderWidth: bars ? 0 : 2,
        pointRadius: 0,
        tension: 0.25,
        spanGaps: true,
      })),
    },
    options,
  });
  let destroyed = false;
  return {
    chart,
    update(labels, series) {
      // a page may get its data after the reader left it
      if (destroyed) return;
      chart.data.labels = labels;
      series.forEach((values, i) => {
        chart.data.datasets[i].data = values;
      });
      chart.update();
    },
    destroy() {
      destroyed = true;
      chart.destroy();
    },
  };
}

export const minuteLabel = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
