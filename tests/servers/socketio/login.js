// The login shared by chat-room.js and raw-feed.js, the two apps whose real users' sessions the
// `volley record` tests capture: users user0..user{N-1}, user{i} with the password pw{i}.
//
//   POST /login {"user":"user3","password":"pw3"}
//        -> 200 {"token":"<32 hex>","user":"user3"} with `Set-Cookie: session=<32 hex>; Path=/;
//           HttpOnly`; every login issues a new token and a new session cookie, all valid for the
//           life of the server
//        -> 401 {"error":"bad credentials"} for an unknown user or a wrong password
//        -> 400 {"error":"..."} when the body is not a JSON object with string `user` and
//           `password`, 413 when it exceeds 64 KiB
//
// Also here: the JSON answer every handler writes, the test page served at `GET /`, and the
// end of a server's life (SIGTERM/SIGINT, or stdin closing unless --keep-stdin).
"use strict";

const { parseArgs } = require("node:util");

const crypto = require("node:crypto");
const fs = require("node:fs");

const MAX_BODY = 64 * 1024;

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

// The HTML file `path`, read once, answered to every `GET /`.
function pageHandler(path) {
  const html = fs.readFileSync(path);
  return (res) => {
    res.writeHead(200, {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Length": html.length,
      "Cache-Control": "no-store",
    });
    res.end(html);
  };
}

const randomHex = () => crypto.randomBytes(16).toString("hex");

// The accounts, the tokens and session cookies issued, and the login counts.
class Accounts {
  constructor(users) {
    this.users = users;
    this.tokens = new Map(); // token -> user name
    this.sessions = new Map(); // session cookie -> user name
    this.refused = 0; // 401
    this.bad = 0; // 400 and 413
    // Called with the user name after each successful login.
    this.onLogin = () => {};
  }

  // The user name of `name` when it is one of user0..user{N-1} (no leading zeros), else null.
  known(name) {
    const match = /^user(0|[1-9][0-9]*)$/.exec(name);
    return match && Number(match[1]) < this.users ? name : null;
  }

  // The user a token was issued to, or null.
  userOfToken(token) {
    return typeof token === "string" ? (this.tokens.get(token) ?? null) : null;
  }

  // The user a `Cookie` header's `session` was issued to, or null.
  userOfCookie(header) {
    if (typeof header !== "string") return null;
    for (const part of header.split(";")) {
      const eq = part.indexOf("=");
      if (eq >= 0 && part.slice(0, eq).trim() === "session") {
        return this.sessions.get(part.slice(eq + 1).trim()) ?? null;
      }
    }
    return null;
  }

  // Answers `POST /login`.
  handle(req, res) {
    const chunks = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (chunk) => {
      if (tooLarge) return;
      size += chunk.length;
      if (size > MAX_BODY) {
        tooLarge = true;
        this.bad += 1;
        sendJson(res, 413, { error: "body too large" }, { Connection: "close" });
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => {
      if (!tooLarge) this.answer(res, Buffer.concat(chunks).toString("utf8"));
    });
    req.on("error", () => {});
  }

  answer(res, text) {
    let body;
    try {
      body = JSON.parse(text);
    } catch {
      this.bad += 1;
      sendJson(res, 400, { error: "bad json" });
      return;
    }
    if (!body || typeof body !== "object" || typeof body.user !== "string" || typeof body.password !== "string") {
      this.bad += 1;
      sendJson(res, 400, { error: 'expected {"user": string, "password": string}' });
      return;
    }
    const user = this.known(body.user);
    if (user === null || body.password !== `pw${user.slice(4)}`) {
      this.refused += 1;
      sendJson(res, 401, { error: "bad credentials" });
      return;
    }
    const token = randomHex();
    const session = randomHex();
    this.tokens.set(token, user);
    this.sessions.set(session, user);
    this.onLogin(user);
    sendJson(res, 200, { token, user }, { "Set-Cookie": `session=${session}; Path=/; HttpOnly` });
  }
}

// Calls `stop(why)` once on SIGTERM, SIGINT, and (unless `keepStdin`) when stdin closes, so that
// a test process that dies never leaves a server behind.
function stopOnSignals(keepStdin, stop) {
  let stopping = false;
  const once = (why) => {
    if (stopping) return;
    stopping = true;
    // Never wait for clients: a last resort exit if closing takes long.
    setTimeout(() => process.exit(0), 1000).unref();
    stop(why);
  };
  process.on("SIGTERM", () => once("SIGTERM"));
  process.on("SIGINT", () => once("SIGINT"));
  if (!keepStdin) {
    process.stdin.on("end", () => once("stdin closed"));
    process.stdin.on("close", () => once("stdin closed"));
    process.stdin.on("error", () => once("stdin error"));
    process.stdin.resume();
  }
}

// ---- what the two apps share: their options, their counts per user, their HTTP ----------------

/// The options of an app: `--port` (required), `--users N` (default 1000), `--keep-stdin`,
/// `--verbose`, and the app's own whole-number options `extra` ({"ping-every": "500"}: name and
/// default), returned camel-cased (`pingEvery`). A bad one exits 2 with the usage line.
function parseAppOptions(script, extra) {
  const usage = (message) => {
    const own = Object.keys(extra).map((name) => `[--${name} MS] `).join("");
    process.stderr.write(
      `${script}: ${message}\n` +
        `usage: node ${script} --port PORT [--users N] ${own}[--keep-stdin] [--verbose]\n`,
    );
    process.exit(2);
  };
  const numbers = { port: undefined, users: "1000", ...extra };
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        ...Object.fromEntries(
          Object.entries(numbers).map(([name, fallback]) => [
            name,
            fallback === undefined ? { type: "string" } : { type: "string", default: fallback },
          ]),
        ),
        "keep-stdin": { type: "boolean", default: false },
        verbose: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage(err.message);
  }
  const integer = (name, min, max = Number.MAX_SAFE_INTEGER) => {
    const text = values[name];
    if (text === undefined) usage(`--${name} is required (--port 0 picks a free port)`);
    const n = Number(text);
    if (text.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      usage(`--${name} must be an integer from ${min} to ${max}, got "${text}"`);
    }
    return n;
  };
  const options = {
    port: integer("port", 0, 65535),
    users: integer("users", 1),
    keepStdin: values["keep-stdin"],
    verbose: values.verbose,
  };
  for (const name of Object.keys(extra)) {
    options[name.replace(/-(.)/g, (_, c) => c.toUpperCase())] = integer(name, 1);
  }
  options.log = values.verbose ? (line) => process.stderr.write(`${script}: ${line}\n`) : () => {};
  return options;
}

/// The counts of each user that logged in (`COUNTS` by name) and its sockets, and /stats.
class UserCounts {
  constructor(counts) {
    this.names = counts;
    this.users = new Map(); // name -> {counts, sockets}
  }

  user(name) {
    let user = this.users.get(name);
    if (!user) {
      user = { counts: Object.fromEntries(this.names.map((c) => [c, 0])), sockets: new Set() };
      this.users.set(name, user);
    }
    return user;
  }

  /// /stats: every user by index with `connected`, the totals, and `more` (the app's own).
  stats(accounts, more) {
    const totals = Object.fromEntries([...this.names, "connected"].map((c) => [c, 0]));
    const perUser = {};
    const byIndex = [...this.users.keys()].sort((a, b) => Number(a.slice(4)) - Number(b.slice(4)));
    for (const name of byIndex) {
      const user = this.users.get(name);
      const row = { ...user.counts, connected: user.sockets.size };
      for (const [key, value] of Object.entries(row)) totals[key] += value;
      perUser[name] = row;
    }
    return {
      users: perUser,
      totals,
      logins_refused: accounts.refused,
      logins_bad: accounts.bad,
      ...more,
    };
  }
}

/// The apps' HTTP: `GET /` the page, `POST /login`, `GET /stats`, else 404.
function appRequests(pageFile, accounts, stats) {
  const page = pageHandler(pageFile);
  return (req, res) => {
    const url = new URL(req.url, "http://localhost").pathname;
    if (req.method === "GET" && url === "/") {
      page(res);
    } else if (req.method === "POST" && url === "/login") {
      accounts.handle(req, res);
    } else if (req.method === "GET" && url === "/stats") {
      sendJson(res, 200, stats());
    } else {
      req.resume();
      sendJson(res, 404, { error: "not found" });
    }
  };
}

module.exports = {
  Accounts,
  UserCounts,
  appRequests,
  pageHandler,
  parseAppOptions,
  sendJson,
  stopOnSignals,
};
