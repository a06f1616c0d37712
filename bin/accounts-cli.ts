/**
 * `llm-router user …` and `llm-router key …`: manage accounts straight in the
 * data store, for recovery when the dashboard or API is out of reach. With the
 * NeDB file store, stop the router first (it keeps its own copy in memory).
 */
import { parseArgs } from "node:util";
import { ServiceBroker } from "moleculer";
import { generatePassword } from "../lib/auth/passwords";
import AuthService, { type UserView } from "../services/auth.service";
import ApiKeysService from "../services/apikeys.service";

async function withStore<T>(fn: (broker: ServiceBroker) => Promise<T>): Promise<T> {
  const broker = new ServiceBroker({ namespace: "llm-router-cli", transporter: null, logger: false });
  broker.createService(AuthService);
  broker.createService(ApiKeysService);
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

const USAGE_USER =
  "usage: llm-router user add <name> [--role admin|viewer] [--password P] | user list | user delete <name>";
const USAGE_KEY =
  "usage: llm-router key create --name N [--owner USER] [--models a,b] [--rpm N] [--expires ISO-DATE] | key list | key revoke <id>";

export async function userCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { role: { type: "string", default: "viewer" }, password: { type: "string" } },
  });
  const [sub, name] = positionals;
  await withStore(async (broker) => {
    if (sub === "list") {
      for (const u of await broker.call<UserView[]>("auth.listUsers")) console.log(`${u.id}\t${u.username}\t${u.role}`);
    } else if (sub === "add" && name) {
      const password = values.password ?? generatePassword();
      const u = await broker.call<UserView, object>("auth.createUser", { username: name, password, role: values.role });
      console.log(`created ${u.role} '${u.username}' (${u.id})`);
      if (!values.password) console.log(`password: ${password}`);
    } else if (sub === "delete" && name) {
      const u = await findUser(broker, name);
      await broker.call("auth.removeUser", { id: u.id });
      console.log(`deleted '${name}'`);
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
      rpm: { type: "string" },
      expires: { type: "string" },
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
      const created = await broker.call<{ id: string; key: string }, object>("apikeys.create", {
        name: values.name,
        owner: owner?.id ?? "",
        allowed_models: values.models ? values.models.split(",").map((m) => m.trim()) : undefined,
        rate_limit_rpm: values.rpm ? Number(values.rpm) : undefined,
        expires_at: values.expires,
      });
      console.log(`created key ${created.id} (shown once, store it now):\n${created.key}`);
    } else if (sub === "revoke" && id) {
      await broker.call("apikeys.remove", { id });
      console.log(`revoked ${id}`);
    } else {
      throw new Error(USAGE_KEY);
    }
  });
}
