/** The names of our Prometheus metrics (lib/metrics/router-metrics.ts registers them, merge.ts reads them). */
export const M = {
  requests: "llm_router_requests_total",
  latency: "llm_router_request_duration_seconds",
  ttft: "llm_router_time_to_first_token_seconds",
  tokensIn: "llm_router_tokens_in_total",
  tokensOut: "llm_router_tokens_out_total",
  retries: "llm_router_retries_total",
  queue: "llm_router_queue_length",
  queueWait: "llm_router_queue_wait_seconds",
  nodeActive: "llm_router_node_active_requests",
  nodeCapacity: "llm_router_node_capacity",
  nodeUp: "llm_router_node_up",
  nodeGpuUtil: "llm_router_node_gpu_utilization_percent",
  nodeVramUsed: "llm_router_node_vram_used_bytes",
  nodeVramTotal: "llm_router_node_vram_total_bytes",
  cloudRequests: "cloud_requests_total",
  cloudLatency: "cloud_request_latency_seconds",
} as const;
