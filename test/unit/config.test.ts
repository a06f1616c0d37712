import fs from "node:fs";
import path from "node:path";
import { ENV_VARS, nodeConfig, routerConfig, selectedServices } from "../../lib/config";
import { transporter } from "../../moleculer.config";

describe("configuration", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  test("the README's table lists every environment variable the code reads", () => {
    const readme = fs.readFileSync(path.join(__dirname, "../../README.md"), "utf8");
    const missing = ENV_VARS.filter((v) => !readme.includes(`| \`${v.name}\``)).map((v) => v.name);
    expect(missing).toEqual([]);
  });

  test("every process.env read in the code is in the table", () => {
    const root = path.join(__dirname, "../..");
    const known = new Set(ENV_VARS.map((v) => v.name));
    const read = new Set<string>();
    const walk = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith(".ts")) {
          const src = fs.readFileSync(p, "utf8");
          for (const m of src.matchAll(/env(?:Int|Bool|String)?\(\s*"([A-Z0-9_]+)"/g)) read.add(m[1]);
          for (const m of src.matchAll(/process\.env\.([A-Z0-9_]+)/g)) read.add(m[1]);
        }
      }
    };
    for (const d of ["lib", "services", "mixins", "bin"])
      if (fs.existsSync(path.join(root, d))) walk(path.join(root, d));
    read.delete("LLM_ROUTER_LOG_LEVEL"); // alias of LOGLEVEL, named in its row
    expect([...read].filter((n) => !known.has(n))).toEqual([]);
  });

  test("SERVICES expands groups and refuses unknown names", () => {
    expect(selectedServices(undefined)).toEqual([
      "api",
      "registry",
      "balancer",
      "auth",
      "apikeys",
      "history",
      "cloud",
      "models",
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
      "cloud",
      "models",
    ]);
    expect(selectedServices(" inference , api ")).toEqual(["api", "inference"]);
    expect(() => selectedServices("api,gpu")).toThrow(/unknown service "gpu"/);
  });

  test("defaults follow the seed; bad numbers are refused", () => {
    delete process.env.LLM_ROUTER_PORT;
    expect(routerConfig()).toMatchObject({ host: "0.0.0.0", port: 8080, balancerMode: "auto", nodeTimeoutSecs: 60 });
    expect(nodeConfig()).toMatchObject({ parallel: 4, heartbeatSecs: 10 });
    process.env.LLM_NODE_PARALLEL = "zero";
    expect(() => nodeConfig()).toThrow(/LLM_NODE_PARALLEL must be a number/);
    process.env.LLM_NODE_PARALLEL = "2";
    process.env.LLM_NODE_GPU = "tpu";
    expect(() => nodeConfig()).toThrow(/LLM_NODE_GPU/);
  });

  test("TRANSPORTER takes nats URLs with credentials and never echoes them", () => {
    expect(transporter("")).toBeNull();
    expect(transporter("nats://u:p@h:4222")).toEqual({ type: "NATS", options: { url: "nats://u:p@h:4222" } });
    expect(() => transporter("redis://user:secret@h")).toThrow(/redis:\/\/\*\*\*@h/);
    expect(() => transporter("redis://user:secret@h")).not.toThrow(/secret/);
  });
});
