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

module.exports = { Accounts, pageHandler, sendJson, stopOnSignals };
