/**
 * `llm-router audit …`: the audit log of admin actions through a running
 * router's API (LLM_ROUTER_URL), logged in as the `model` commands are
 * (bin/models-cli.ts). `audit verify` exits 1 when the chain is broken.
 */
import { parseArgs } from "node:util";
import { api } from "./models-cli";
import type { AuditEntry } from "../lib/audit/chain";

type ChainCheck = { ok: true; count: number; head: string | null } | { ok: false; seq: number; reason: string };

const USAGE =
  "usage: llm-router audit list [--limit N] [--before-seq N] [--actor USER] [--action TEXT] [--json] | audit verify";

export async function auditCommand(args: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      limit: { type: "string" },
      "before-seq": { type: "string" },
      actor: { type: "string" },
      action: { type: "string" },
      json: { type: "boolean", default: false },
    },
  });
  const [sub, ...extra] = positionals;
  if (extra.length) throw new Error(USAGE);
  const a = api();
  switch (sub) {
    case "list": {
      const q = new URLSearchParams();
      for (const [name, value] of [
        ["limit", values.limit],
        ["before_seq", values["before-seq"]],
        ["actor", values.actor],
        ["action", values.action],
      ] as const) {
        if (value !== undefined) q.set(name, value);
      }
      const query = q.size ? `?${q}` : "";
      const { entries } = (await a.send("GET", `/api/audit${query}`)) as { entries: AuditEntry[] };
      if (values.json) return console.log(JSON.stringify(entries, null, 2));
      if (!entries.length) return console.log("(no entries)");
      for (const e of entries) {
        const target = e.target === null ? "" : ` ${e.target}`;
        const changes = e.changes === null ? "" : `\t${JSON.stringify(e.changes)}`;
        console.log(`${e.seq}\t${e.ts}\t${e.actor ?? "-"}\t${e.ip}\t${e.action}${target}\t${e.status}${changes}`);
      }
      return;
    }
    case "verify": {
      const check = (await a.send("GET", "/api/audit/verify")) as ChainCheck;
      if (check.ok) {
        console.log(`audit log intact: ${check.count} entries${check.head ? `, head ${check.head}` : ""}`);
        return;
      }
      // exits 1 (bin/main.ts)
      throw new Error(`audit log broken at seq ${check.seq}: ${check.reason}`);
    }
    default:
      throw new Error(USAGE);
  }
}
