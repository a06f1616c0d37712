/**
 * `llm-router model …` and `llm-router nodes`: the model catalog and the node
 * table through a running router's API (LLM_ROUTER_URL), logged in with
 * LLM_ROUTER_TOKEN or LLM_ROUTER_USER + LLM_ROUTER_PASSWORD.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";
import cliProgress from "cli-progress";
import { cliConfig } from "../lib/config";

interface TaskView {
  id: string;
  model: string;
  node: string;
  status: string;
  bytes: number;
  total: number | null;
  rate: number;
  error: string | null;
}

const USAGE_MODEL =
  "usage: llm-router model add <org/repo | hub URL> [--file F.gguf] [--outtype T] | model download <id> (--all | --node ID…) | model list | model status | model load <id> [--node ID] | model unload <id> [--node ID] | model rm <id> | model restart <task id>";

export class Api {
  private token: string | null = null;
  constructor(private readonly base: string) {}

  private async login(): Promise<string> {
    if (this.token) return this.token;
    const { token: given, user: username, password } = cliConfig();
    if (given) return (this.token = given);
    if (!password) throw new Error("set LLM_ROUTER_TOKEN, or LLM_ROUTER_USER and LLM_ROUTER_PASSWORD, to log in");
    const body = await this.send("POST", "/api/auth/login", { username, password }, false);
    return (this.token = (body as { token: string }).token);
  }

  async send(method: string, path: string, body?: unknown, auth = true): Promise<unknown> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (auth) headers.authorization = `Bearer ${await this.login()}`;
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as unknown) : null;
    if (!res.ok) {
      const m = (parsed as { error?: { message?: string } } | null)?.error?.message ?? text;
      throw new Error(`${method} ${path}: ${res.status} ${m}`);
    }
    return parsed;
  }
}

export const api = () => new Api(cliConfig().url);
const enc = encodeURIComponent;

/** Follows download tasks with one progress bar each until all have ended; false if any failed. */
async function follow(a: Api, tasks: TaskView[]): Promise<boolean> {
  const interactive = process.stdout.isTTY === true;
  const bars = new cliProgress.MultiBar(
    {
      format: "{node} |{bar}| {percentage}% {value}/{total} bytes {rate}/s {status}",
      hideCursor: true,
      clearOnComplete: false,
      noTTYOutput: !interactive,
      notTTYSchedule: 1000,
    },
    cliProgress.Presets.shades_classic,
  );
  const bar = new Map(
    tasks.map((t) => [t.id, bars.create(t.total ?? 0, 0, { node: t.node, rate: 0, status: t.status })]),
  );
  const ended = new Map<string, TaskView>();
  while (ended.size < tasks.length) {
    for (const t of tasks) {
      if (ended.has(t.id)) continue;
      const now = (await a.send("GET", `/api/tasks/${enc(t.id)}`)) as TaskView;
      const b = bar.get(t.id)!;
      if (now.total) b.setTotal(now.total);
      b.update(now.bytes, { node: now.node, rate: Math.round(now.rate), status: now.status });
      if (["done", "failed", "cancelled"].includes(now.status)) ended.set(t.id, now);
    }
    if (ended.size < tasks.length) await sleep(300);
  }
  bars.stop();
  for (const t of ended.values()) {
    console.log(`${t.node}: ${t.status}${t.error ? ` (${t.error})` : ""}`);
  }
  return [...ended.values()].every((t) => t.status === "done");
}

export async function modelCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      file: { type: "string" },
      outtype: { type: "string" },
      all: { type: "boolean", default: false },
      node: { type: "string", multiple: true },
      json: { type: "boolean", default: false },
    },
  });
  const [sub, arg] = positionals;
  const a = api();
  switch (sub) {
    case "add": {
      if (!arg) throw new Error(USAGE_MODEL);
      const m = (await a.send("POST", "/api/models/register", {
        repo: arg,
        file: values.file,
        outtype: values.outtype,
      })) as { id: string; size: number | null; task?: TaskView };
      if (!m.task) return console.log(`registered ${m.id}${m.size ? ` (${m.size} bytes)` : ""}`);
      console.log(`converting ${arg} into ${m.id} (task ${m.task.id})`);
      if (await follow(a, [m.task])) console.log(`registered ${m.id}`);
      else process.exitCode = 1;
      return;
    }
    case "restart": {
      if (!arg) throw new Error(USAGE_MODEL);
      const t = (await a.send("POST", `/api/tasks/${enc(arg)}/restart`)) as TaskView;
      console.log(`restarted ${t.id} (${t.model})`);
      if (!(await follow(a, [t]))) process.exitCode = 1;
      return;
    }
    case "download": {
      if (!arg || (!values.all && !values.node?.length)) throw new Error(USAGE_MODEL);
      const { tasks } = (await a.send(
        "POST",
        `/api/models/${enc(arg)}/download`,
        values.all ? { all: true } : { nodes: values.node },
      )) as { tasks: TaskView[] };
      if (!(await follow(a, tasks))) process.exitCode = 1;
      return;
    }
    case "list": {
      const list = (await a.send("GET", "/api/models")) as Array<{ id: string; size: number | null; nodes: string[] }>;
      if (values.json) return console.log(JSON.stringify(list, null, 2));
      if (!list.length) return console.log("(no models registered)");
      for (const m of list) console.log(`${m.id}\t${m.size ?? "?"} bytes\ton: ${m.nodes.join(", ") || "(none)"}`);
      return;
    }
    case "status": {
      // what the nodes can serve: loaded, or on a disk and loaded by the first request
      const { data } = (await a.send("GET", "/api/playground/models")) as {
        data: Array<{ id: string; status: string; nodes: string[]; available_on: string[]; alias_of?: string }>;
      };
      if (values.json) return console.log(JSON.stringify(data, null, 2));
      if (!data.length) return console.log("(no models)");
      for (const m of data) {
        const where = m.alias_of
          ? `alias of ${m.alias_of}`
          : `loaded on: ${m.nodes.join(", ") || "-"}\tavailable on: ${m.available_on.join(", ") || "-"}`;
        console.log(`${m.id}\t${m.status}\t${where}`);
      }
      return;
    }
    case "load": {
      if (!arg || (values.node?.length ?? 0) > 1) throw new Error(USAGE_MODEL);
      const r = (await a.send("POST", `/api/models/${enc(arg)}/load`, { node: values.node?.[0] })) as {
        node: string;
        loaded_now: boolean;
      };
      console.log(r.loaded_now ? `${arg} is loaded on ${r.node}` : `${arg} was loaded on ${r.node} already`);
      return;
    }
    case "unload": {
      if (!arg || (values.node?.length ?? 0) > 1) throw new Error(USAGE_MODEL);
      const r = (await a.send("POST", `/api/models/${enc(arg)}/unload`, { node: values.node?.[0] })) as {
        nodes: string[];
      };
      console.log(`${arg} unloaded from ${r.nodes.join(", ")}`);
      return;
    }
    case "rm": {
      if (!arg) throw new Error(USAGE_MODEL);
      await a.send("DELETE", `/api/models/${enc(arg)}`);
      console.log(`removed ${arg} from the catalog`);
      return;
    }
    default:
      throw new Error(USAGE_MODEL);
  }
}

export async function nodesCommand(): Promise<void> {
  const nodes = (await api().send("GET", "/api/nodes")) as Array<{
    id: string;
    status: string;
    machine_name: string;
    models: string[];
    active_requests: number;
    capacity: number;
  }>;
  if (!nodes.length) return console.log("(no nodes)");
  for (const n of nodes) {
    console.log(
      `${n.id}\t${n.status}\t${n.machine_name}\t${n.active_requests}/${n.capacity} busy\t${n.models.join(", ")}`,
    );
  }
}
