import fs from "node:fs";
import path from "node:path";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import {
  BALANCER_MODES,
  CONFIG_DOC_COMMAND,
  CONFIG_DOC_PATH,
  ENV,
  ENV_VARS,
  GROUPS,
  checkEnv,
  clusterConfig,
  cloudConfig,
  configMarkdown,
  envValues,
  metricsConfig,
  nodeConfig,
  read,
  routerConfig,
  routerProcesses,
  selectedServices,
  shownDefault,
  storageConfig,
} from "../../../../lib/config";
import { PROVIDERS } from "../../../../lib/providers/index";
import { STRATEGY_NAMES } from "../../../../lib/strategies";
import { transporter } from "../../../../moleculer.config";

const ROOT = path.join(__dirname, "../../../..");

/**
 * The only `process.env` reads allowed outside lib/config/: a process handing
 * its environment to a child it starts. Each entry: file, and the text of the line.
 */
const CHILD_ENV_PASSES: Array<{ file: string; line: RegExp }> = [
  // the primary starts the router processes (cluster.fork) with its environment, plus their role
  { file: "bin/processes.ts", line: /workerSetup\(index, process\.env\)/ },
];

/** The .ts files of the application (not tests or benchmarks). */
function sourceFiles(): string[] {
  const out: string[] = [path.join(ROOT, "moleculer.config.ts")];
  const walk = (dir: string) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".ts")) out.push(p);
    }
  };
  for (const d of ["lib", "services", "mixins", "bin"]) if (fs.existsSync(path.join(ROOT, d))) walk(path.join(ROOT, d));
  return out;
}

describe("configuration", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test(`${CONFIG_DOC_PATH} is generated from the spec`, () => {
    const file = fs.readFileSync(path.join(ROOT, CONFIG_DOC_PATH), "utf8");
    const fresh = file === configMarkdown();
    expect(fresh ? "up to date" : `${CONFIG_DOC_PATH} is stale: run \`${CONFIG_DOC_COMMAND}\` and commit it`).toBe(
      "up to date",
    );
  });

  test("nothing reads process.env around the spec (outside lib/config/), except to hand it to a child process", () => {
    const found: string[] = [];
    const known = new Set(ENV_VARS.map((v) => v.name));
    const unknown: string[] = [];
    for (const file of sourceFiles()) {
      const rel = path.relative(ROOT, file).split(path.sep).join("/");
      const src = fs.readFileSync(file, "utf8");
      // names used through the spec, and the ones an allowed child-env pass reads, are all in it
      for (const m of src.matchAll(/\bENV\.([A-Z][A-Z0-9_]*)/g)) if (!known.has(m[1])) unknown.push(`${rel}: ${m[1]}`);
      if (rel.startsWith("lib/config/")) continue;
      src.split("\n").forEach((line, i) => {
        const reads =
          /\bprocess\s*(\.\s*env\b|\[\s*["'`]env)/.test(line) || /\{[^}]*\benv\b[^}]*\}\s*=\s*process\b/.test(line);
        if (!reads) return;
        if (CHILD_ENV_PASSES.some((a) => a.file === rel && a.line.test(line))) return;
        found.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
      if (CHILD_ENV_PASSES.some((x) => x.file === rel))
        for (const m of src.matchAll(/\benv\.([A-Z][A-Z0-9_]*)/g))
          if (!known.has(m[1])) unknown.push(`${rel}: ${m[1]}`);
    }
    expect(found).toEqual([]);
    expect(unknown).toEqual([]);
    // every allowed pass is still there (a stale entry would allow a read elsewhere in that file)
    for (const a of CHILD_ENV_PASSES) expect(fs.readFileSync(path.join(ROOT, a.file), "utf8")).toMatch(a.line);
  });

  test("the spec: one entry per name, documented, secrets marked, value lists in step with the code", () => {
    const names = ENV_VARS.map((v) => v.name);
    expect(new Set(names).size).toBe(names.length);
    expect(Object.keys(ENV).sort()).toEqual([...names].sort());
    expect(GROUPS.flatMap((g) => g.vars)).toEqual(ENV_VARS);
    for (const v of ENV_VARS) {
      expect(v.doc.length).toBeGreaterThan(5);
      expect(() => shownDefault(v)).not.toThrow();
      // an alias is no other variable's name
      for (const a of v.aliases) expect(names).not.toContain(a);
    }
    // keys, passwords, tokens and URLs that carry credentials are secrets (a token count is not)
    const secretName = /(PASSWORD|SECRET|_KEY|TOKEN)$/;
    const shouldBeSecret = names.filter((n) => secretName.test(n) && !/_PER_TOKEN$/.test(n));
    expect(ENV_VARS.filter((v) => v.secret).map((v) => v.name)).toEqual(
      names.filter(
        (n) => shouldBeSecret.includes(n) || ["TRANSPORTER", "MONGO_URI", "LLM_ROUTER_DATABASE_URL"].includes(n),
      ),
    );
    expect([...BALANCER_MODES].sort()).toEqual([...STRATEGY_NAMES].sort());
    expect(Object.keys(cloudConfig()).sort()).toEqual(Object.keys(PROVIDERS).sort());
  });

  test("SERVICES expands groups and refuses unknown names", () => {
    delete process.env.SERVICES;
    expect(selectedServices(undefined)).toEqual([
      "api",
      "registry",
      "balancer",
      "auth",
      "apikeys",
      "history",
      "responses",
      "cloud",
      "models",
      "aliases",
      "audit",
      "usage",
      "inference",
    ]);
    expect(selectedServices("inference")).toEqual(["inference"]);
    expect(selectedServices("router")).toEqual([
      "api",
      "registry",
      "balancer",
      "auth",
      "apikeys",
      "history",
      "responses",
      "cloud",
      "models",
      "aliases",
      "audit",
      "usage",
    ]);
    expect(selectedServices(" inference , api ")).toEqual(["api", "inference"]);
    expect(() => selectedServices("api,gpu")).toThrow(/SERVICES names an unknown service "gpu"/);
    process.env.SERVICES = "gateway";
    expect(selectedServices()).toEqual(["api", "registry", "balancer", "cloud"]);
  });

  test("defaults follow the seed; bad values are refused, naming the variable", () => {
    for (const v of ENV_VARS) delete process.env[v.name];
    expect(routerConfig()).toMatchObject({ host: "0.0.0.0", port: 8080, balancerMode: "auto", nodeTimeoutSecs: 60 });
    expect(nodeConfig()).toMatchObject({ parallel: 4, heartbeatSecs: 10, gpu: "auto", engine: "llama" });
    expect(metricsConfig()).toEqual({ token: null, port: null, trustedProxies: [] });
    expect(storageConfig().dataDir).toMatch(/\.llm-router$/);
    expect(routerProcesses()).toBe(1);
    process.env.LLM_NODE_PARALLEL = "zero";
    expect(() => nodeConfig()).toThrow('LLM_NODE_PARALLEL must be a whole number >= 1, got "zero"');
    process.env.LLM_NODE_PARALLEL = "2.5";
    expect(() => nodeConfig()).toThrow(/LLM_NODE_PARALLEL must be a whole number/);
    process.env.LLM_NODE_PARALLEL = "2";
    process.env.LLM_NODE_GPU = "tpu";
    expect(() => nodeConfig()).toThrow(/LLM_NODE_GPU must be auto, cuda, vulkan, metal or false/);
    process.env.LLM_NODE_GPU = "CPU";
    expect(nodeConfig()).toMatchObject({ parallel: 2, gpu: false });
    process.env.LLM_NODE_MAX_LOADED_MODELS = "2";
    process.env.LLM_NODE_MEMORY_BUDGET = "1.5gb";
    process.env.LLM_NODE_PINNED_MODELS = "a, org/b";
    expect(nodeConfig()).toMatchObject({
      maxLoadedModels: 2,
      memoryBudget: 1.5 * 2 ** 30,
      pinnedModels: ["a", "org/b"],
    });
    process.env.LLM_NODE_MEMORY_BUDGET = "lots";
    expect(() => nodeConfig()).toThrow(/LLM_NODE_MEMORY_BUDGET must be a size such as 24gb/);
    delete process.env.LLM_NODE_MEMORY_BUDGET;
    process.env.NODEID = "router 1";
    expect(() => clusterConfig()).toThrow(/NODEID must be letters, digits/);
    delete process.env.NODEID;
    process.env.LLM_ROUTER_PORT = "70000";
    expect(() => routerConfig()).toThrow(/LLM_ROUTER_PORT must be a whole number from 0 to 65535/);
    process.env.LLM_ROUTER_PORT = "";
    expect(routerConfig().port).toBe(8080); // empty is unset
    process.env.LLM_ROUTER_LOAD_BALANCER_MODE = "fastest";
    expect(() => routerConfig()).toThrow(/LLM_ROUTER_LOAD_BALANCER_MODE must be one of auto, round_robin/);
    process.env.LLM_ROUTER_LOAD_BALANCER_MODE = "Least_Busy";
    process.env.LLM_ROUTER_NODE_TIMEOUT = "1.5";
    expect(routerConfig()).toMatchObject({ balancerMode: "least_busy", nodeTimeoutSecs: 1.5 });
    process.env.LLM_ROUTER_PROCESSES = "auto";
    expect(routerProcesses()).toBeGreaterThanOrEqual(1);
    process.env.LLM_ROUTER_TRUSTED_PROXIES = " loopback, 10.0.0.0/8 ,";
    expect(metricsConfig().trustedProxies).toEqual(["loopback", "10.0.0.0/8"]);
    process.env.OPENAI_BASE_URL = "ftp://x";
    expect(() => cloudConfig()).toThrow(/OPENAI_BASE_URL must be a URL \(http:\/\/, https:\/\/\), got "ftp:\/\/x"/);
    process.env.OPENAI_BASE_URL = "http://stand-in:1234/";
    expect(cloudConfig().openai.baseUrl).toBe("http://stand-in:1234");
    // at start, every bad variable at once, even those read only later
    process.env.LLM_NODE_PARALLEL = "x";
    process.env.LLM_ROUTER_PORT = "y";
    expect(() => checkEnv()).toThrow(/^LLM_ROUTER_PORT must be .*; LLM_NODE_PARALLEL must be/);
  });

  test("an alias is read when the variable is not set; the variable wins", () => {
    delete process.env.LOGLEVEL;
    delete process.env.LLM_ROUTER_LOG_LEVEL;
    expect(clusterConfig().logLevel).toBe("info");
    process.env.LLM_ROUTER_LOG_LEVEL = "DEBUG";
    expect(clusterConfig().logLevel).toBe("debug");
    process.env.LOGLEVEL = "warn";
    expect(clusterConfig().logLevel).toBe("warn");
    delete process.env.LOGLEVEL;
    process.env.LLM_ROUTER_LOG_LEVEL = "loud";
    expect(() => clusterConfig()).toThrow(/^LLM_ROUTER_LOG_LEVEL must be one of fatal, error/);
  });

  test("a secret is never printed: not in errors, not by `env --values`", () => {
    process.env.MONGO_URI = "postgres://user:hunter2@db";
    expect(() => storageConfig()).toThrow(/^MONGO_URI must be a mongodb:\/\/ or mongodb\+srv:\/\/ connection string/);
    expect(() => storageConfig()).not.toThrow(/hunter2/);
    expect(() => checkEnv()).toThrow(/^MONGO_URI must be .* \(the value is a secret: not shown\)$/);
    process.env.MONGO_URI = "mongodb://user:hunter2@h1:27017,h2:27017/llm-router?replicaSet=rs";
    expect(storageConfig().mongoUri).toBe(process.env.MONGO_URI);
    process.env.OPENAI_API_KEY = " sk-hunter2\n";
    expect(cloudConfig().openai.apiKey).toBe("sk-hunter2");
    process.env.LLM_ROUTER_PORT = "9090";
    const values = envValues();
    expect(JSON.stringify(values)).not.toMatch(/hunter2/);
    expect(values.find((v) => v.name === "OPENAI_API_KEY")).toEqual({
      name: "OPENAI_API_KEY",
      value: "(set, not shown)",
      from: "OPENAI_API_KEY",
    });
    expect(values.find((v) => v.name === "LLM_ROUTER_PORT")).toMatchObject({ value: "9090" });
    delete process.env.LLM_NODE_CONTEXT_SIZE;
    expect(values.find((v) => v.name === "LLM_NODE_CONTEXT_SIZE")).toMatchObject({ value: "4096", from: "default" });
    expect(values.find((v) => v.name === "MONGO_URI")).toMatchObject({ value: "(set, not shown)" });
    expect(read(ENV.LLM_ROUTER_PORT, { LLM_ROUTER_PORT: "1" })).toBe(1);
  });

  test("a service reads its configuration when it is created, not when its file is imported", async () => {
    process.env.LLM_ROUTER_HISTORY_RETENTION_DAYS = "never";
    process.env.LLM_ROUTER_DATA_DIR = ":memory:";
    delete process.env.OPENAI_API_KEY;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const load = (file: string) => (require(file) as { default: ServiceSchema }).default;
    const HistoryService = load("../../../../services/history.service");
    const CloudService = load("../../../../services/cloud.service");
    const broker = new ServiceBroker({ logger: false });
    try {
      expect(() => broker.createService(HistoryService)).toThrow(/LLM_ROUTER_HISTORY_RETENTION_DAYS must be/);
      process.env.OPENAI_API_KEY = "sk-test";
      process.env.OPENAI_MODELS = "gpt-test";
      broker.createService(CloudService);
      await broker.start();
      expect(await broker.call("cloud.models")).toEqual(["openai:gpt-test"]);
    } finally {
      await broker.stop();
    }
  });

  test("TRANSPORTER takes nats URLs with credentials and never echoes them", () => {
    expect(transporter("")).toBeNull();
    expect(transporter("nats://u:p@h:4222")).toEqual({ type: "NATS", options: { url: "nats://u:p@h:4222" } });
    expect(() => transporter("redis://user:secret@h")).toThrow(/redis:\/\/\*\*\*@h/);
    expect(() => transporter("redis://user:secret@h")).not.toThrow(/secret/);
  });
});
