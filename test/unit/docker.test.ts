/**
 * The images and compose files in docker/, checked by reading them (no Docker
 * engine runs here): compose files parsed with `yaml`, Dockerfiles with a
 * small instruction parser. Where a Compose is installed (the plugin, or
 * Debian's docker-compose 1.29, which .ci/run installs), each compose file's
 * test also runs its `config` check on it.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { spawnSync } from "node:child_process";
import { parse } from "yaml";
import { selectedServices } from "../../lib/config";

const ROOT = path.join(__dirname, "../..");
const DOCKER = path.join(ROOT, "docker");

// ---- compose ------------------------------------------------------------

interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> };
  environment?: Record<string, string | number | boolean | null> | string[];
  healthcheck?: { test?: string[] | string; disable?: boolean; start_period?: string };
  depends_on?: Record<string, { condition?: string }> | string[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  ports?: (string | { target?: number })[];
  stop_grace_period?: string;
  deploy?: { resources?: { reservations?: { devices?: { driver?: string; capabilities?: string[] }[] } } };
}

interface ComposeFile {
  name?: string;
  services: Record<string, ComposeService>;
  volumes?: Record<string, unknown>;
}

function loadCompose(file: string): ComposeFile {
  return parse(fs.readFileSync(path.join(DOCKER, file), "utf8"), { merge: true }) as ComposeFile;
}

function envOf(svc: ComposeService): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(svc.environment)) {
    for (const entry of svc.environment) {
      const i = entry.indexOf("=");
      out[i < 0 ? entry : entry.slice(0, i)] = i < 0 ? "" : entry.slice(i + 1);
    }
  } else {
    for (const [k, v] of Object.entries(svc.environment ?? {})) out[k] = v === null ? "" : String(v);
  }
  return out;
}

/** `name:/path` mounts of named volumes (bind mounts start with `.` or `/`). */
function namedVolumes(svc: ComposeService): { source: string; target: string }[] {
  return (svc.volumes ?? [])
    .map((v) => (typeof v === "string" ? { source: v.split(":")[0], target: v.split(":")[1] } : v))
    .filter((v): v is { source: string; target: string } => !!v.source && !!v.target && !/^[./~]/.test(v.source));
}

function seconds(duration: string | undefined): number {
  const m = /^(\d+)(s|m)$/.exec(duration ?? "");
  if (!m) return 0;
  return Number(m[1]) * (m[2] === "m" ? 60 : 1);
}

/** A whole value that is a `${VAR}` reference: `${VAR}`, `${VAR:?message}`, or `${VAR:-}` with no default. */
const REFERENCE = /^\$\{[A-Z][A-Z0-9_]*(?::\?[^}]*|:-|\?[^}]*|-)?\}$/;
const SECRET_NAME = /(PASSWORD|SECRET|_KEY|TOKEN)$/;

function checkNoInlineSecrets(file: string, compose: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const [k, v] of Object.entries(envOf(svc))) {
      if (SECRET_NAME.test(k) && !REFERENCE.test(v)) problems.push(`${file} ${name}: ${k} is not a \${VAR} reference`);
      // credentials inside a URL (nats://user:pass@host, postgres://user:pass@host)
      const cred = /^[a-z+]+:\/\/[^:/@]+:([^@]*)@/.exec(v);
      if (cred && !REFERENCE.test(cred[1])) problems.push(`${file} ${name}: ${k} has an inline password`);
    }
    for (const [k, v] of Object.entries(svc.build?.args ?? {})) {
      if (SECRET_NAME.test(k)) problems.push(`${file} ${name}: build arg ${k} would bake a secret into the image`);
      if (/^\$\{/.test(String(v)) && SECRET_NAME.test(String(v)))
        problems.push(`${file} ${name}: build arg ${k} from a secret`);
    }
  }
  return problems;
}

function checkHealth(file: string, compose: ComposeFile): string[] {
  const problems: string[] = [];
  const healthy = (name: string) => {
    const h = compose.services[name]?.healthcheck;
    return !!h && h.disable !== true && !!h.test && h.test.length > 0 && h.test[0] !== "NONE";
  };
  for (const [name, svc] of Object.entries(compose.services)) {
    if (!healthy(name)) problems.push(`${file} ${name}: no healthcheck`);
    const deps = svc.depends_on ?? {};
    if (Array.isArray(deps)) {
      problems.push(`${file} ${name}: depends_on without a condition`);
      continue;
    }
    for (const [dep, spec] of Object.entries(deps)) {
      if (!compose.services[dep]) problems.push(`${file} ${name}: depends on unknown ${dep}`);
      else if (spec.condition !== "service_healthy") problems.push(`${file} ${name}: ${dep} without service_healthy`);
      else if (!healthy(dep)) problems.push(`${file} ${name}: waits for ${dep}, which has no healthcheck`);
    }
  }
  return problems;
}

function checkVolumes(file: string, compose: ComposeFile): string[] {
  const problems: string[] = [];
  const declared = new Set(Object.keys(compose.volumes ?? {}));
  const used = new Set<string>();
  for (const [name, svc] of Object.entries(compose.services)) {
    for (const v of namedVolumes(svc)) {
      used.add(v.source);
      if (!declared.has(v.source)) problems.push(`${file} ${name}: volume ${v.source} is not declared`);
    }
    const services = envOf(svc).SERVICES;
    if (services === undefined) continue;
    const expanded = selectedServices(services);
    const targets = namedVolumes(svc).map((v) => v.target);
    // the images set LLM_ROUTER_DATA_DIR=/data and LLM_NODE_MODELS_DIR=/models
    if (expanded.includes("auth") && !targets.includes("/data")) problems.push(`${file} ${name}: no /data volume`);
    if (expanded.includes("inference") && !targets.includes("/models"))
      problems.push(`${file} ${name}: no /models volume`);
  }
  for (const v of declared) if (!used.has(v)) problems.push(`${file}: volume ${v} is declared but unused`);
  return problems;
}

/** An image that a variable may replace (`${NATS_IMAGE:-nats:2.10-alpine}`): its default. */
const imageDefault = (image?: string) => image?.replace(/^\$\{[A-Z_]+:-(.+)\}$/, "$1");

/** Every compose file's build sections, by image name, must agree (dockerfile, GPU arg, tag). */
const builds = new Map<string, string>();
function checkImages(file: string, compose: ComposeFile): string[] {
  const problems: string[] = [];
  for (const [name, svc] of Object.entries(compose.services)) {
    if (!svc.build) {
      if (!/:[\w.-]+$/.test(imageDefault(svc.image) ?? ""))
        problems.push(`${file} ${name}: third-party image without a tag`);
      continue;
    }
    if (!svc.image) {
      problems.push(`${file} ${name}: build without an image name`);
      continue;
    }
    const context = path.resolve(DOCKER, svc.build.context ?? ".");
    if (context !== ROOT) problems.push(`${file} ${name}: build context is not the repository root`);
    const dockerfile = svc.build.dockerfile ?? "Dockerfile";
    if (!fs.existsSync(path.join(context, dockerfile))) problems.push(`${file} ${name}: no ${dockerfile}`);
    const gpu = svc.build.args?.GPU;
    if (dockerfile === "docker/Dockerfile.node") {
      if (gpu !== "cpu" && gpu !== "cuda") problems.push(`${file} ${name}: GPU build arg must be cpu or cuda`);
      if (svc.image !== `llm-router/node:${gpu}`) problems.push(`${file} ${name}: image ${svc.image} for GPU=${gpu}`);
      const nodeGpu = envOf(svc).LLM_NODE_GPU;
      if (gpu === "cuda" && nodeGpu !== "cuda") problems.push(`${file} ${name}: a CUDA node without LLM_NODE_GPU=cuda`);
      if (gpu === "cpu" && nodeGpu !== undefined && nodeGpu !== "false")
        problems.push(`${file} ${name}: a CPU image asked for LLM_NODE_GPU=${nodeGpu}`);
    } else if (gpu !== undefined) problems.push(`${file} ${name}: GPU arg on ${dockerfile}`);
    const key = JSON.stringify({ dockerfile, args: svc.build.args ?? {} });
    const seen = builds.get(svc.image);
    if (seen !== undefined && seen !== key) problems.push(`${file} ${name}: ${svc.image} built two different ways`);
    builds.set(svc.image, key);
  }
  return problems;
}

function checkCluster(file: string, compose: ComposeFile, gpu: boolean): string[] {
  const problems: string[] = [];
  if (!compose.services.nats) problems.push(`${file}: no nats service`);
  if (!compose.services.postgres) problems.push(`${file}: no postgres service`);
  const nats = compose.services.nats;
  if (nats) {
    const mounts = (nats.volumes ?? []).filter((v): v is string => typeof v === "string");
    if (!mounts.some((v) => v.startsWith("./nats.conf:"))) problems.push(`${file} nats: does not mount nats.conf`);
    if (!mounts.includes("./nats-start.sh:/etc/nats/start.sh:ro"))
      problems.push(`${file} nats: does not start through nats-start.sh`);
    if (!namedVolumes(nats).some((v) => v.target === "/data"))
      problems.push(`${file} nats: no volume for JetStream's store (/data)`);
  }
  const postgres = compose.services.postgres;
  if (postgres) {
    if (!/^postgres:\d+/.test(imageDefault(postgres.image) ?? ""))
      problems.push(`${file} postgres: image ${postgres.image}`);
    if (!namedVolumes(postgres).some((v) => v.target === "/var/lib/postgresql/data"))
      problems.push(`${file} postgres: no volume for the database`);
  }
  for (const [name, svc] of Object.entries(compose.services)) {
    const env = envOf(svc);
    if (env.SERVICES === undefined) continue;
    if (!/^nats:\/\/[^@]+@nats:4222$/.test(env.TRANSPORTER ?? ""))
      problems.push(`${file} ${name}: TRANSPORTER is not the compose NATS (with credentials)`);
    const deps = svc.depends_on as Record<string, { condition?: string }> | undefined;
    if (deps?.nats?.condition !== "service_healthy") problems.push(`${file} ${name}: does not wait for nats`);
    const expanded = selectedServices(env.SERVICES);
    if (expanded.includes("auth") && !/^postgres:\/\/[^@]+@postgres:5432\//.test(env.LLM_ROUTER_DATABASE_URL ?? ""))
      problems.push(`${file} ${name}: the router does not use the compose PostgreSQL`);
    if (expanded.includes("auth") && deps?.postgres?.condition !== "service_healthy")
      problems.push(`${file} ${name}: does not wait for postgres`);
    if (expanded.includes("inference")) {
      const devices = svc.deploy?.resources?.reservations?.devices ?? [];
      const nvidia = devices.some((d) => d.driver === "nvidia" && (d.capabilities ?? []).includes("gpu"));
      if (gpu && !nvidia) problems.push(`${file} ${name}: a GPU node without an nvidia device reservation`);
      if (!gpu && devices.length > 0) problems.push(`${file} ${name}: a CPU node reserves devices`);
      if (svc.build?.args?.GPU !== (gpu ? "cuda" : "cpu")) problems.push(`${file} ${name}: wrong GPU build arg`);
    }
  }
  return problems;
}

/**
 * A Compose that can check the files: the Docker Compose plugin (`docker
 * compose`), else the Debian package's docker-compose 1.29 (`.ci/run`
 * installs it), which predates the top-level `name`.
 */
const composeTool: "plugin" | "v1" | null =
  spawnSync("docker", ["compose", "version"], { encoding: "utf8" }).status === 0
    ? "plugin"
    : spawnSync("docker-compose", ["version"], { encoding: "utf8" }).status === 0
      ? "v1"
      : null;

/** `docker compose config` on the file, with stand-in values for the secrets it requires. */
function composeConfig(file: string): { status: number | null; output: string } {
  const env = { ...process.env, NATS_PASSWORD: "test-nats-password", POSTGRES_PASSWORD: "test-postgres-password" };
  if (composeTool === "plugin") {
    const r = spawnSync("docker", ["compose", "-f", path.join(DOCKER, file), "config", "--quiet"], {
      encoding: "utf8",
      env,
    });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  }
  // docker-compose 1.29: the same file without the project `name` (a copy beside it: paths stay relative to docker/)
  const copy = path.join(DOCKER, `.v1-check-${file}`);
  fs.writeFileSync(copy, fs.readFileSync(path.join(DOCKER, file), "utf8").replace(/^name:.*$/m, ""));
  try {
    const r = spawnSync("docker-compose", ["-f", copy, "config", "--quiet"], { encoding: "utf8", env });
    return { status: r.status, output: `${r.stdout}${r.stderr}` };
  } finally {
    fs.rmSync(copy, { force: true });
  }
}

const COMPOSE_FILES: { file: string; services: Record<string, string>; cluster: boolean; gpu: boolean }[] = [
  { file: "compose.yml", services: { "llm-router": "all" }, cluster: false, gpu: false },
  {
    file: "compose.cluster.yml",
    services: { router: "router", "node-1": "inference", "node-2": "inference", nats: "-", postgres: "-" },
    cluster: true,
    gpu: false,
  },
  {
    file: "compose.gpu.yml",
    services: { router: "router", "gpu-node-1": "inference", "gpu-node-2": "inference", nats: "-", postgres: "-" },
    cluster: true,
    gpu: true,
  },
];

describe("docker compose files", () => {
  test.each(COMPOSE_FILES)("$file", ({ file, services, cluster, gpu }) => {
    const compose = loadCompose(file);
    // the services and what each hosts (SERVICES; "-" for third-party ones)
    const hosted = Object.fromEntries(
      Object.entries(compose.services).map(([name, svc]) => [name, envOf(svc).SERVICES ?? "-"]),
    );
    expect(hosted).toEqual(services);
    for (const s of Object.values(hosted)) if (s !== "-") expect(() => selectedServices(s)).not.toThrow();

    const problems = [
      ...checkNoInlineSecrets(file, compose),
      ...checkHealth(file, compose),
      ...checkVolumes(file, compose),
      ...checkImages(file, compose),
      ...(cluster ? checkCluster(file, compose, gpu) : []),
    ];
    for (const [name, svc] of Object.entries(compose.services)) {
      if (envOf(svc).SERVICES === undefined) continue;
      // drains for LLM_SHUTDOWN_TIMEOUT_SECS (30 s) before Docker's SIGKILL
      if (seconds(svc.stop_grace_period) <= 30) problems.push(`${file} ${name}: stop_grace_period under 30 s`);
      if (selectedServices(envOf(svc).SERVICES).includes("api")) {
        const published = (svc.ports ?? []).some((p) =>
          typeof p === "string" ? p.endsWith(":8080") : p.target === 8080,
        );
        if (!published) problems.push(`${file} ${name}: the API port is not published`);
      }
    }
    expect(problems).toEqual([]);

    if (composeTool) {
      const r = composeConfig(file);
      expect(r.status === 0 ? "docker compose config: ok" : r.output).toBe("docker compose config: ok");
    }
  });

  test("docker/nats.conf enables JetStream on the nats volume and keeps its login and monitoring", () => {
    const conf = fs
      .readFileSync(path.join(DOCKER, "nats.conf"), "utf8")
      .split("\n")
      .filter((l) => !l.trim().startsWith("#"))
      .join("\n");
    const jetstream = /^jetstream\s*\{([^}]*)\}/m.exec(conf);
    expect(jetstream).not.toBeNull();
    expect(jetstream?.[1]).toMatch(/^\s*store_dir:\s*"?\/data(\/[\w-]+)*"?\s*$/m);
    expect(conf).not.toMatch(/^\s*jetstream\s*:\s*(false|disabled?)\b/m);
    // the login is added at start by nats-start.sh, never written in the file
    expect(conf).not.toMatch(/password/);
    expect(conf).toMatch(/^http_port:\s*8222\s*$/m);
  });

  // a real nats-server checks the configuration nats-start.sh writes (-t), with passwords that a
  // `$NATS_PASSWORD` reference in nats.conf could not take: hex with a digit first, all digits
  // (.ci/run installs Debian's nats-server, as the cluster tests need it too)
  const natsServer = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => fs.existsSync(p)) ?? "nats-server";
  test("nats-start.sh gives nats-server the login, whatever URL-safe password", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "nats-start-"));
    const start = (password: string) =>
      spawnSync("sh", [path.join(DOCKER, "nats-start.sh"), "-t"], {
        encoding: "utf8",
        env: {
          PATH: `${path.dirname(natsServer)}:${process.env.PATH}`,
          NATS_PASSWORD: password,
          NATS_CONF: path.join(DOCKER, "nats.conf"),
          NATS_RUNTIME_CONF: path.join(dir, "nats.conf"),
        },
      });
    try {
      for (const password of ["4c3a9e07b1d2", "2e5f00aa", "123456", "abc-DEF_1.2~3"]) {
        const r = start(password);
        expect({ password, status: r.status, out: r.status === 0 ? "" : r.stderr + r.stdout }).toEqual({
          password,
          status: 0,
          out: "",
        });
        const written = fs.readFileSync(path.join(dir, "nats.conf"), "utf8");
        expect(written).toContain(`password: "${password}"`);
        expect(fs.statSync(path.join(dir, "nats.conf")).mode & 0o077).toBe(0);
      }
      const bad = start('a"b');
      expect(bad.status).not.toBe(0);
      expect(bad.stderr).toMatch(/NATS_PASSWORD must not contain quotes/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("docker/.env.example names every variable the compose files read, with no value for a secret", () => {
    const example = fs.readFileSync(path.join(DOCKER, ".env.example"), "utf8");
    const assigned = new Map<string, string>();
    for (const m of example.matchAll(/^#?\s*([A-Z][A-Z0-9_]*)=(.*)$/gm)) assigned.set(m[1], m[2].trim());
    const referenced = new Set<string>();
    for (const { file } of COMPOSE_FILES) {
      const src = fs.readFileSync(path.join(DOCKER, file), "utf8");
      for (const m of src.matchAll(/\$\{([A-Z][A-Z0-9_]*)/g)) referenced.add(m[1]);
    }
    expect([...referenced].filter((v) => !assigned.has(v))).toEqual([]);
    expect([...assigned].filter(([k, v]) => SECRET_NAME.test(k) && v !== "")).toEqual([]);
  });
});

// ---- Dockerfiles ----------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
  stage: number;
}

/** Instructions of a Dockerfile: comments dropped, `\` continuations joined, numbered by FROM stage. */
function parseDockerfile(file: string): Instruction[] {
  const lines = fs.readFileSync(path.join(DOCKER, file), "utf8").split("\n");
  const out: Instruction[] = [];
  let stage = -1;
  let current = "";
  for (const raw of lines) {
    const line = raw.trim();
    if (line.startsWith("#") || (line === "" && current === "")) continue;
    current += (current ? " " : "") + line.replace(/\\$/, "").trim();
    if (line.endsWith("\\")) continue;
    const m = /^(\w+)\s*(.*)$/.exec(current);
    current = "";
    if (!m) continue;
    const op = m[1].toUpperCase();
    if (op === "FROM") stage++;
    out.push({ op, args: m[2], stage });
  }
  return out;
}

/** Names set by ENV (both `K=V …` and the old `K V` form) and ARG. */
function declaredNames(ins: Instruction[]): string[] {
  const names: string[] = [];
  for (const i of ins) {
    if (i.op === "ARG") names.push(i.args.split("=")[0].trim());
    if (i.op === "ENV") {
      if (i.args.includes("=")) for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=/g)) names.push(m[1]);
      else names.push(i.args.split(/\s+/)[0]);
    }
  }
  return names;
}

const DOCKERFILES = [
  { file: "Dockerfile.router", services: "router" },
  { file: "Dockerfile.node", services: "inference" },
];

describe("Dockerfiles", () => {
  test.each(DOCKERFILES)("$file", ({ file, services }) => {
    const ins = parseDockerfile(file);
    const froms = ins.filter((i) => i.op === "FROM");
    const last = froms.length - 1;
    const final = ins.filter((i) => i.stage === last);
    const globalArgs = Object.fromEntries(
      ins
        .filter((i) => i.op === "ARG" && i.stage === -1)
        .map((i) => [i.args.split("=")[0], i.args.split("=")[1] ?? ""]),
    );

    // multi-stage: a build stage with npm ci and a prune, the image copies from it
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(globalArgs.NODE_IMAGE).toBe("node:20-bookworm-slim");
    const build = ins.filter((i) => i.stage === 0);
    expect(froms[0].args).toMatch(/ AS build$/);
    expect(build.some((i) => i.op === "RUN" && /\bnpm ci\b/.test(i.args))).toBe(true);
    expect(build.some((i) => i.op === "RUN" && /\bnpm prune --omit=dev\b/.test(i.args))).toBe(true);
    expect(final.some((i) => i.op === "COPY" && i.args.startsWith("--from=build "))).toBe(true);
    // what the build copies exists, and the runtime needs nothing else from the repository
    for (const i of build.filter((x) => x.op === "COPY")) {
      for (const src of i.args.split(/\s+/).slice(0, -1)) expect(fs.existsSync(path.join(ROOT, src))).toBe(true);
    }

    // a non-root user in the image
    const users = final.filter((i) => i.op === "USER");
    expect(users.length).toBeGreaterThan(0);
    expect(users[users.length - 1].args).not.toMatch(/^(root|0)(:|$)/);

    // health check through bin/healthcheck.ts, the command line through bin/main.ts
    const health = final.find((i) => i.op === "HEALTHCHECK");
    expect(health?.args).toMatch(/CMD \["node", "--import", "tsx", "bin\/healthcheck\.ts"\]/);
    expect(fs.existsSync(path.join(ROOT, "bin/healthcheck.ts"))).toBe(true);
    expect(final.find((i) => i.op === "ENTRYPOINT")?.args).toBe('["node", "--import", "tsx", "bin/main.ts"]');

    // the image's defaults: its services, the volumes' paths, the beat file
    const env = final
      .filter((i) => i.op === "ENV")
      .flatMap((i) => [...i.args.matchAll(/([A-Z_][A-Z0-9_]*)=(\S+)/g)])
      .reduce<Record<string, string>>((acc, m) => ({ ...acc, [m[1]]: m[2] }), {});
    expect(env.SERVICES).toBe(services);
    expect(env.LLM_ROUTER_DATA_DIR).toBe("/data");
    expect(env.LLM_NODE_MODELS_DIR).toBe("/models");
    expect(env.LLM_HEALTH_FILE).toMatch(/^\/tmp\//);

    // no secret in ENV or ARG anywhere (they would stay in the image's history)
    expect(declaredNames(ins).filter((n) => SECRET_NAME.test(n))).toEqual([]);
  });

  test("the node image picks its runtime by the GPU build argument (cpu by default, cuda)", () => {
    const ins = parseDockerfile("Dockerfile.node");
    const froms = ins.filter((i) => i.op === "FROM").map((i) => i.args);
    expect(ins.find((i) => i.op === "ARG" && i.stage === -1 && i.args.startsWith("GPU="))?.args).toBe("GPU=cpu");
    expect(froms).toContain("${NODE_IMAGE} AS runtime-cpu");
    expect(froms).toContain("${NODE_IMAGE} AS runtime-cuda");
    expect(froms[froms.length - 1]).toBe("runtime-${GPU} AS runtime");
    const cuda = ins.filter((i) => i.stage === froms.indexOf("${NODE_IMAGE} AS runtime-cuda"));
    const run = cuda.find((i) => i.op === "RUN")?.args ?? "";
    expect(run).toMatch(/cuda-cudart-\$v/);
    expect(run).toMatch(/libcublas-\$v/);
    expect(cuda.some((i) => i.op === "ENV" && /NVIDIA_DRIVER_CAPABILITIES=compute,utility/.test(i.args))).toBe(true);
    // the CPU variant drops the GPU builds of llama.cpp; both skip node-llama-cpp's postinstall
    const buildRuns = ins.filter((i) => i.stage === 0 && i.op === "RUN").map((i) => i.args);
    expect(buildRuns.some((r) => /cpu\) rm -rf node_modules\/@node-llama-cpp\/\*-cuda\*/.test(r))).toBe(true);
    expect(buildRuns.some((r) => /NODE_LLAMA_CPP_SKIP_DOWNLOAD=true npm ci/.test(r))).toBe(true);
  });

  test(".dockerignore keeps dependencies, models, data, secrets, tests and git out of the build context", () => {
    const patterns = fs
      .readFileSync(path.join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    for (const p of ["**/node_modules", "**/*.gguf", "data", ".git", "**/.env", "test", "scratch", "coverage"])
      expect(patterns).toContain(p);
  });
});
