/**
 * A key's priority in the router's wait queue: a name (`interactive`,
 * `normal`, `batch`) or a number from 0 to 1000; higher goes first. Keys
 * without one are `normal`, as are requests without a key (a login's).
 */
import { badRequest } from "../openai/errors";

export const PRIORITIES = { interactive: 800, normal: 500, batch: 200 } as const;
export type PriorityName = keyof typeof PRIORITIES;
export type Priority = PriorityName | number;

export const DEFAULT_PRIORITY = PRIORITIES.normal;

/** The number a stored priority stands for (a name's, or the number itself). */
export function priorityValue(p: Priority | null | undefined): number {
  if (p === null || p === undefined) return DEFAULT_PRIORITY;
  return typeof p === "number" ? p : PRIORITIES[p];
}

/** A priority as a client sends it, checked: a known name or a whole number 0–1000; null clears it. */
export function parsePriority(raw: unknown, param = "priority"): Priority | null {
  if (raw === null) return null;
  if (typeof raw === "string" && Object.hasOwn(PRIORITIES, raw)) return raw as PriorityName;
  if (typeof raw === "number" && Number.isInteger(raw) && raw >= 0 && raw <= 1000) return raw;
  throw badRequest(
    `${param} must be one of ${Object.keys(PRIORITIES).join(", ")}, or a whole number from 0 to 1000 (higher goes first).`,
    param,
    "invalid_value",
  );
}
