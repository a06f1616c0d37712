/**
 * `llm-router user …` and `llm-router key …`: manage accounts straight in the
 * data store, for recovery when the dashboard or API is out of reach. With the
 * NeDB file store, stop the router first (it keeps its own copy in memory).
 * Every change is appended to the audit log (actor `cli:<os user>`).
 */
import { parseArgs } from "node:util";
import { ServiceBroker } from "moleculer";
import { generatePassword } from "../lib/auth/passwords";
import { audited } from "../lib/audit/console";
import AuthService, { type UserView } from "../services/auth.service";
import ApiKeysService from "../services/apikeys.service";
import AuditService from "../services/audit.service";

async function withStore<T>(fn: (broker: ServiceBroker) => Promise<T>): Promise<T> {
  const broker = new ServiceBroker({ namespace: "llm-router-cli", transporter: null, logger: false });
  broker.createService(AuthService);
  broker.createService(ApiKeysService);
  broker.createService(AuditService);
  await broker.start();
  try {
    return await fn(broker);
  } finally {
    await broker.stop();
  }
}

async function findUser(broker: ServiceBroker, username: string): Promise<UserView> {
  const users = await broker.call<UserView[]>("auth.listUsers");
  const u = users.find((x) => x.username === username);
  if (!u) throw new Error(`no user named '${username}'`);
  return u;
}

const LIMIT_OPTIONS = {
  rpm: { type: "string" },
  tpm: { type: "string" },
  "daily-budget": { type: "string" },
  "monthly-budget": { type: "string" },
  "max-concurrent": { type: "string" },
} as const;

const LIMIT_USAGE = "[--rpm N] [--tpm N] [--daily-budget N] [--monthly-budget N] [--max-concurrent N]";
const USAGE_USER = `usage: llm-router user add <name> [--role admin|viewer] [--password P] | user list | user delete <name> | user limits <name> ${LIMIT_USAGE} (0: no limit)`;
const USAGE_KEY = `usage: llm-router key create --name N [--owner USER] [--models a,b] [--expires ISO-DATE] [--priority interactive|normal|batch|0-1000] [--scopes inference,read,…] ${LIMIT_USAGE} | key list | key revoke <id>`;

/** The limit options given, as the API's fields (a number; 0 clears one for `user limits`). */
function limitFields(values: Record<string, unknown>, zeroClears = false): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  const fields: Record<string, string> = {
    rpm: "rate_limit_rpm",
    tpm: "rate_limit_tpm",
    "daily-budget": "daily_token_budget",
    "monthly-budget": "monthly_token_budget",
    "max-concurrent": "max_concurrent_requests",
  };
  for (const [opt, field] of Object.entries(fields)) {
    const v = values[opt];
    if (typeof v !== "string") continue;
    const n = Number(v);
    out[field] = zeroClears && n === 0 ? null : n;
  }
  return out;
}

export async function userCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { role: { type: "string", default: "viewer" }, password: { type: "string" }, ...LIMIT_OPTIONS },
  });
  const [sub, name] = positionals;
  await withStore(async (broker) => {
    if (sub === "list") {
      for (const u of await broker.call<UserView[]>("auth.listUsers")) console.log(`${u.id}\t${u.username}\t${u.role}`);
    } else if (sub === "add" && name) {
      const password = values.password ?? generatePassword();
      const params = { username: name, password, role: values.role };
      const u = await audited(broker, "cli", "user add", name, params, () =>
        broker.call<UserView, object>("auth.createUser", params),
      );
      console.log(`created ${u.role} '${u.username}' (${u.id})`);
      if (!values.password) console.log(`password: ${password}`);
    } else if (sub === "delete" && name) {
      const u = await findUser(broker, name);
      await audited(broker, "cli", "user delete", name, null, async () => {
        await broker.call("auth.removeUser", { id: u.id });
        await broker.call("apikeys.setUserLimits", {
          user: u.id,
          ...limitFields(
            { rpm: "0", tpm: "0", "daily-budget": "0", "monthly-budget": "0", "max-concurrent": "0" },
            true,
          ),
        });
      });
      console.log(`deleted '${name}'`);
    } else if (sub === "limits" && name) {
      const u = await findUser(broker, name);
      const fields = limitFields(values, true);
      const set = Object.keys(fields).length
        ? await audited(broker, "cli", "user limits", name, fields, () =>
            broker.call<Record<string, unknown>, object>("apikeys.setUserLimits", { user: u.id, ...fields }),
          )
        : ((await broker.call<Record<string, Record<string, unknown>>>("apikeys.userLimits"))[u.id] ?? {});
      const shown = Object.entries(set).filter(([k, v]) => k !== "user" && v !== null);
      console.log(shown.length ? shown.map(([k, v]) => `${k}=${String(v)}`).join(" ") : `'${name}' has no limits`);
    } else {
      throw new Error(USAGE_USER);
    }
  });
}

export async function keyCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      owner: { type: "string" },
      models: { type: "string" },
      expires: { type: "string" },
      priority: { type: "string" },
      scopes: { type: "string" },
      ...LIMIT_OPTIONS,
    },
  });
  const [sub, id] = positionals;
  await withStore(async (broker) => {
    if (sub === "list") {
      const keys = await broker.call<Array<Record<string, unknown>>, object>("apikeys.list", {});
      for (const k of keys)
        console.log(`${k.id}\t${k.name}\t${k.key_preview}\towner=${k.owner}\tlast used ${k.last_used_at ?? "never"}`);
    } else if (sub === "create" && values.name) {
      const users = await broker.call<UserView[]>("auth.listUsers");
      const owner = values.owner ? await findUser(broker, values.owner) : users.find((u) => u.role === "admin");
      const priority = values.priority;
      const params = {
        name: values.name,
        owner: owner?.id ?? "",
        allowed_models: values.models ? values.models.split(",").map((m) => m.trim()) : undefined,
        expires_at: values.expires,
        priority: priority === undefined ? undefined : /^\d+$/.test(priority) ? Number(priority) : priority,
        scopes: values.scopes ? values.scopes.split(",").map((x) => x.trim()) : undefined,
        ...limitFields(values),
      };
      const created = await audited(broker, "cli", "key create", values.name, params, () =>
        broker.call<{ id: string; key: string }, object>("apikeys.create", params),
      );
      console.log(`created key ${created.id} (shown once, store it now):\n${created.key}`);
    } else if (sub === "revoke" && id) {
      await audited(broker, "cli", "key revoke", id, null, () => broker.call("apikeys.remove", { id }));
      console.log(`revoked ${id}`);
    } else {
      throw new Error(USAGE_KEY);
    }
  });
}
