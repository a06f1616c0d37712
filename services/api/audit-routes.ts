/**
 * The audit log of admin actions (services/audit.service.ts), mounted on
 * `/api`: its entries newest first, and the chain checked. Admins only.
 */
import type { Handler } from "./gateway";
import { answer, queryOf } from "./route-helpers";

export const auditAliases: Record<string, Handler> = {
  /** `?limit` (≤ 500), `before_seq`, `actor`, `action` (a substring) → `{entries}`, newest first. */
  "GET /audit"(gw, req, res) {
    answer(gw, res, async () => {
      const q = queryOf(req);
      const params = Object.fromEntries(
        ["limit", "before_seq", "actor", "action"].filter((k) => q[k] !== undefined).map((k) => [k, q[k]]),
      );
      return req.$ctx.call("audit.list", params);
    });
  },
  /** `{ok: true, count, head}`, or `{ok: false, seq, reason}` naming the first entry that fails (200 either way). */
  "GET /audit/verify"(gw, req, res) {
    answer(gw, res, async () => req.$ctx.call("audit.verify"));
  },
};
