/**
 * Failed logins, counted per user name and per client address over 15
 * minutes: past 10 for a user or 30 for an address, logins are refused (429)
 * until the window ends. In this process's memory, or in the shared
 * database when routers share one (lib/db/shared-state.ts), so the limit
 * holds across all of them.
 */
import type { Sequelize } from "sequelize";
import { SharedCounter } from "../db/shared-state";
import { WindowCounter } from "./throttle";

export const FAILURE_WINDOW_MS = 15 * 60_000;
export const MAX_FAILURES_PER_USER = 10;
export const MAX_FAILURES_PER_IP = 30;

export interface LoginThrottle {
  /** Seconds to wait when logins for this user or from this address are refused now; null when they may try. */
  refused(user: string, ip: string): Promise<number | null>;
  failed(user: string, ip: string): Promise<void>;
  succeeded(user: string): Promise<void>;
}

export function memoryThrottle(): LoginThrottle {
  const byUser = new WindowCounter(FAILURE_WINDOW_MS);
  const byIp = new WindowCounter(FAILURE_WINDOW_MS);
  return {
    async refused(user, ip) {
      if (byUser.count(user) < MAX_FAILURES_PER_USER && byIp.count(ip) < MAX_FAILURES_PER_IP) return null;
      return Math.max(byUser.retryAfterSecs(user), byIp.retryAfterSecs(ip));
    },
    async failed(user, ip) {
      byUser.hit(user);
      byIp.hit(ip);
    },
    async succeeded(user) {
      byUser.reset(user);
    },
  };
}

export function sharedThrottle(db: Sequelize): LoginThrottle {
  const byUser = new SharedCounter(db, "login-user", FAILURE_WINDOW_MS);
  const byIp = new SharedCounter(db, "login-ip", FAILURE_WINDOW_MS);
  return {
    async refused(user, ip) {
      const [u, i] = await Promise.all([byUser.count(user), byIp.count(ip)]);
      if (u.count < MAX_FAILURES_PER_USER && i.count < MAX_FAILURES_PER_IP) return null;
      return Math.max(u.retryAfterSecs, i.retryAfterSecs);
    },
    async failed(user, ip) {
      await Promise.all([byUser.hit(user), byIp.hit(ip)]);
    },
    async succeeded(user) {
      await byUser.reset(user);
    },
  };
}
