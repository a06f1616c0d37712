/**
 * Users and login: scrypt-hashed passwords, HS256 login tokens, roles `admin`
 * and `viewer`, the first admin created at first start, login throttling.
 */
import type { Context, Service, ServiceSchema, ServiceSettingSchema } from "moleculer";
import { authConfig, storageConfig, type AuthConfig } from "../lib/config";
import { signToken, verifyToken, type TokenClaims } from "../lib/auth/jwt";
import { generatePassword, hashPassword, MAX_PASSWORD_LENGTH, verifyPassword } from "../lib/auth/passwords";
import { loadOrCreateSecret, newSecret } from "../lib/auth/secret";
import { memoryThrottle, sharedThrottle, type LoginThrottle } from "../lib/auth/login-throttle";
import { openDatabase, releaseDatabase } from "../lib/db/postgres";
import { TokenDenylist } from "../lib/db/shared-state";
import { apiError } from "../lib/openai/errors";
import { dbMixin, idOf, openCollection } from "../mixins/db.mixin";

type Role = "admin" | "viewer";

interface UserDoc {
  _id?: unknown;
  username: string;
  passwordHash: string;
  role: Role;
  createdAt: string;
  updatedAt: string;
}

export interface UserView {
  id: string;
  username: string;
  role: Role;
  created_at: string;
  updated_at: string;
}

interface Settings extends ServiceSettingSchema {
  auth: AuthConfig;
  dataDir: string;
}

interface Vars {
  secret: string;
  revoked: Map<string, number>;
  throttle: LoginThrottle;
  /** With a shared database: the logged-out tokens every router refuses, and its URL (released on stop). */
  denylist: TokenDenylist | null;
  databaseUrl: string | undefined;
  adapter: {
    find(q: { query: object }): Promise<UserDoc[]>;
    findById(id: string): Promise<UserDoc | null>;
    insert(doc: UserDoc): Promise<UserDoc>;
    updateById(id: string, update: object): Promise<UserDoc>;
    removeById(id: string): Promise<unknown>;
    count(q?: { query: object }): Promise<number>;
  };
}

interface Methods {
  revoke(jti: string, exp: number): void;
  view(u: UserDoc): UserView;
  byName(username: string): Promise<UserDoc | null>;
  byId(id: string): Promise<UserDoc>;
  admins(): Promise<number>;
  ensureAdmin(): Promise<void>;
}

type This = Service<Settings> & Vars & Methods;

const username = { type: "string", min: 1, max: 64, pattern: /^[A-Za-z0-9._@-]+$/ };
const password = { type: "string", min: 8, max: MAX_PASSWORD_LENGTH };
const role = { type: "enum", values: ["admin", "viewer"] };

/** The JWT secret kept in the shared database, made by the first router that needed it. */
async function sharedSecret(service: Service): Promise<string> {
  const secrets = await openCollection("secrets", service);
  try {
    const kept = (await secrets.findById("jwt")) as { value?: string } | null;
    if (kept?.value) return kept.value;
    const value = newSecret();
    try {
      await secrets.insert({ _id: "jwt", value });
      return value;
    } catch (err) {
      // another router inserted it meanwhile
      const theirs = (await secrets.findById("jwt")) as { value?: string } | null;
      if (theirs?.value) return theirs.value;
      throw err;
    }
  } finally {
    await secrets.disconnect();
  }
}

const AuthService: ServiceSchema<Settings, Methods, Vars> = {
  name: "auth",
  mixins: [dbMixin("users")],

  // `auth` and `dataDir` are set in `created`; `auth` is never published to other nodes (the admin password, the JWT secret)
  settings: { $secureSettings: ["auth"] } as Settings,

  actions: {
    login: {
      visibility: "public",
      params: {
        username: { type: "string", max: 256 },
        password: { type: "string", max: MAX_PASSWORD_LENGTH },
        ip: { type: "string", optional: true },
      },
      async handler(this: This, ctx: Context<{ username: string; password: string; ip?: string }>) {
        const userKey = ctx.params.username.toLowerCase();
        const ipKey = ctx.params.ip ?? "unknown";
        const retryAfter = await this.throttle.refused(userKey, ipKey);
        if (retryAfter !== null) {
          throw apiError(429, "Too many failed logins; try again later.", "too_many_login_attempts", { retryAfter });
        }
        const user = await this.byName(ctx.params.username);
        // hash even for unknown users, so timing does not tell which names exist
        const ok = await verifyPassword(
          ctx.params.password,
          user?.passwordHash ?? (await hashPassword("x".repeat(12))),
        );
        if (!user || !ok) {
          await this.throttle.failed(userKey, ipKey);
          throw apiError(401, "Wrong username or password.", "invalid_credentials");
        }
        await this.throttle.succeeded(userKey);
        const view = this.view(user);
        const { token, expiresAt } = signToken(view, this.secret, this.settings.auth.jwtExpiresSecs);
        return { token, token_type: "Bearer", expires_at: expiresAt, user: view };
      },
    },

    /** Checks a login token: signature, HS256, expiry, not logged out, user still there (role read fresh). */
    verifyToken: {
      visibility: "public",
      params: { token: { type: "string", max: 8192 } },
      async handler(this: This, ctx: Context<{ token: string }>): Promise<TokenClaims> {
        const claims = verifyToken(ctx.params.token, this.secret);
        if (this.revoked.has(claims.jti)) throw apiError(401, "The token was logged out.", "invalid_token");
        const user = await this.adapter.findById(claims.sub).catch(() => null);
        if (!user) throw apiError(401, "The token's user no longer exists.", "invalid_token");
        return { ...claims, username: user.username, role: user.role };
      },
    },

    logout: {
      visibility: "public",
      params: { jti: "string", exp: "number" },
      async handler(this: This, ctx: Context<{ jti: string; exp: number }>) {
        this.revoke(ctx.params.jti, ctx.params.exp);
        // kept in the shared database: a router that starts later refuses it too
        await this.denylist?.add(ctx.params.jti, ctx.params.exp);
        // other auth instances (router replicas on one MongoDB) refuse it too
        this.broker.broadcast("auth.loggedOut", { jti: ctx.params.jti, exp: ctx.params.exp }).catch((err: Error) => {
          this.logger.warn(
            `a logout could not be sent to the other routers (the token stays valid there until it expires): ${err.message}`,
          );
        });
        return { logged_out: true };
      },
    },

    me: {
      visibility: "public",
      params: { id: "string" },
      async handler(this: This, ctx: Context<{ id: string }>) {
        return this.view(await this.byId(ctx.params.id));
      },
    },

    changePassword: {
      visibility: "public",
      params: { id: "string", current_password: { type: "string", max: MAX_PASSWORD_LENGTH }, new_password: password },
      async handler(this: This, ctx: Context<{ id: string; current_password: string; new_password: string }>) {
        const user = await this.byId(ctx.params.id);
        if (!(await verifyPassword(ctx.params.current_password, user.passwordHash))) {
          throw apiError(403, "The current password is wrong.", "invalid_credentials", { param: "current_password" });
        }
        await this.adapter.updateById(ctx.params.id, {
          $set: { passwordHash: await hashPassword(ctx.params.new_password), updatedAt: new Date().toISOString() },
        });
        return { changed: true };
      },
    },

    listUsers: {
      visibility: "public",
      async handler(this: This) {
        const users = await this.adapter.find({ query: {} });
        return users.map((u) => this.view(u)).sort((a, b) => a.username.localeCompare(b.username));
      },
    },

    createUser: {
      visibility: "public",
      params: { username, password, role: { ...role, optional: true } },
      async handler(this: This, ctx: Context<{ username: string; password: string; role?: Role }>) {
        if (await this.byName(ctx.params.username)) {
          throw apiError(409, `A user named '${ctx.params.username}' exists already.`, "user_exists", {
            param: "username",
          });
        }
        const now = new Date().toISOString();
        const doc = await this.adapter.insert({
          username: ctx.params.username,
          passwordHash: await hashPassword(ctx.params.password),
          role: ctx.params.role ?? "viewer",
          createdAt: now,
          updatedAt: now,
        });
        return this.view(doc);
      },
    },

    updateUser: {
      visibility: "public",
      params: {
        id: "string",
        username: { ...username, optional: true },
        password: { ...password, optional: true },
        role: { ...role, optional: true },
      },
      async handler(this: This, ctx: Context<{ id: string; username?: string; password?: string; role?: Role }>) {
        const user = await this.byId(ctx.params.id);
        if (ctx.params.role === "viewer" && user.role === "admin" && (await this.admins()) <= 1) {
          throw apiError(409, "The last admin cannot be demoted.", "last_admin", { param: "role" });
        }
        if (ctx.params.username && ctx.params.username !== user.username) {
          const other = await this.byName(ctx.params.username);
          if (other)
            throw apiError(409, `A user named '${ctx.params.username}' exists already.`, "user_exists", {
              param: "username",
            });
        }
        const set: Partial<UserDoc> = { updatedAt: new Date().toISOString() };
        if (ctx.params.username) set.username = ctx.params.username;
        if (ctx.params.role) set.role = ctx.params.role;
        if (ctx.params.password) set.passwordHash = await hashPassword(ctx.params.password);
        await this.adapter.updateById(ctx.params.id, { $set: set });
        return this.view(await this.byId(ctx.params.id));
      },
    },

    removeUser: {
      visibility: "public",
      params: { id: "string" },
      async handler(this: This, ctx: Context<{ id: string }>) {
        const user = await this.byId(ctx.params.id);
        if (user.role === "admin" && (await this.admins()) <= 1) {
          throw apiError(409, "The last admin cannot be deleted.", "last_admin");
        }
        await this.adapter.removeById(ctx.params.id);
        return { deleted: true, id: ctx.params.id };
      },
    },
  },

  events: {
    "auth.loggedOut"(this: This, ctx: Context<{ jti: string; exp: number }>) {
      if (ctx.nodeID !== this.broker.nodeID) this.revoke(ctx.params.jti, ctx.params.exp);
    },
  },

  methods: {
    revoke(this: This, jti: string, exp: number) {
      const now = Date.now() / 1000;
      for (const [id, e] of this.revoked) if (e < now) this.revoked.delete(id);
      this.revoked.set(jti, exp);
    },

    view(u: UserDoc): UserView {
      return { id: idOf(u), username: u.username, role: u.role, created_at: u.createdAt, updated_at: u.updatedAt };
    },

    async byName(this: This, name: string): Promise<UserDoc | null> {
      const found = await this.adapter.find({ query: { username: name } });
      return found[0] ?? null;
    },

    async byId(this: This, id: string): Promise<UserDoc> {
      const user = await this.adapter.findById(id).catch(() => null);
      if (!user) throw apiError(404, `No user with id '${id}'.`, "user_not_found", { param: "id" });
      return user;
    },

    admins(this: This): Promise<number> {
      return this.adapter.count({ query: { role: "admin" } });
    },

    /** First start: create the admin; a generated password is printed once. */
    async ensureAdmin(this: This) {
      if ((await this.adapter.count({ query: {} })) > 0) return;
      const { adminUsername, adminPassword } = this.settings.auth;
      const pw = adminPassword ?? generatePassword();
      const now = new Date().toISOString();
      try {
        await this.adapter.insert({
          username: adminUsername,
          passwordHash: await hashPassword(pw),
          role: "admin",
          createdAt: now,
          updatedAt: now,
        });
      } catch (err) {
        // routers starting together on one database: another one created the admin first (usernames are unique there)
        if ((await this.adapter.count({ query: { username: adminUsername } })) > 0) return;
        throw err;
      }
      if (adminPassword) {
        this.logger.info(`Created the admin user '${adminUsername}' with the password from LLM_ROUTER_ADMIN_PASSWORD.`);
      } else {
        // printed once, straight to the terminal, never through the logger
        process.stdout.write(
          "\n" +
            "  ┌──────────────────────────────────────────────────────────────────\n" +
            `  │ First start: created the admin user '${adminUsername}'.\n` +
            `  │ Password: ${pw}\n` +
            "  │ It is shown this once. Log in: POST /api/auth/login; change it: POST /api/auth/password.\n" +
            "  └──────────────────────────────────────────────────────────────────\n\n",
        );
      }
    },
  },

  created(this: This) {
    // configuration is read now, when the service is created, not when this file is imported
    this.settings = { ...this.settings, auth: authConfig(), dataDir: storageConfig().dataDir };
    this.revoked = new Map();
    this.throttle = memoryThrottle();
    this.denylist = null;
    this.databaseUrl = storageConfig().databaseUrl;
  },

  async started(this: This) {
    const { databaseUrl } = this;
    // routers sharing a database share the secret, failed logins and logouts kept there: one router is as good as another
    this.secret =
      databaseUrl && !this.settings.auth.jwtSecret
        ? await sharedSecret(this as unknown as Service)
        : loadOrCreateSecret(this.settings.dataDir, this.settings.auth.jwtSecret);
    if (databaseUrl) {
      const db = await openDatabase(databaseUrl);
      this.throttle = sharedThrottle(db);
      this.denylist = new TokenDenylist(db);
      await this.denylist.prune();
      for (const [jti, exp] of await this.denylist.active()) this.revoked.set(jti, exp);
    }
    await this.ensureAdmin();
  },

  async stopped(this: This) {
    if (this.databaseUrl && this.denylist) await releaseDatabase(this.databaseUrl);
  },
};

export default AuthService;
