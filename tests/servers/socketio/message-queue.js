#!/usr/bin/env node
// A chat service with a queue per user (npm `socket.io`), for volley's integration tests. It shows
// the usual answer to "what if a client misses an event": the server keeps, per user, every
// message not yet acknowledged by the application, and replays them when the client asks.
//
//   node message-queue.js --port 0 [--users N] [--channels C] [--publish-every MS]
//                         [--publish-for MS] [--drop-every MS] [--drop-until MS]
//                         [--keep-stdin] [--verbose]
//
//   --users N          users user0..user{N-1}, user{i} has the password pw{i} (default 1000)
//   --channels C       channels c0..c{C-1} (default 2)
//   --publish-every MS one message per channel every MS ms while publishing (default 100)
//   --publish-for MS   publishing lasts MS ms from the first subscription (default 3000): each
//                      channel produces exactly floor(publish-for / publish-every) messages,
//                      the first one publish-every ms after the first subscription, then
//                      publishing stops for good, so that every count settles
//   --drop-until MS    drops happen only in the first MS ms of publishing (default: all of it):
//                      a client that is back before publishing ends learns, from the next live
//                      message, what it missed at the very end
//   --drop-every MS    while publishing, the server drops every connected user's connection
//                      once per MS ms (default 0: never; see "Drops" below)
//
// Listens on 127.0.0.1 and prints `listening on PORT` on stdout once ready; nothing else is
// ever written to stdout. Exits on SIGTERM/SIGINT, and when stdin closes (--keep-stdin turns that
// off for manual runs). --verbose logs logins, connections, drops and disconnects on stderr.
// Connection state recovery is off: the replay here is the application's own.
//
// HTTP, on the same server as Socket.IO, JSON in and out:
//   POST /login {"user":"user17","password":"pw17"}
//        -> 200 {"token":"<32 hex>","user":"user17"} with `Set-Cookie: session=<32 hex>; Path=/;
//           HttpOnly`; every login issues a new token and a new session, and all of them stay
//           valid for the life of the server (counted in logins_ok)
//        -> 401 {"error":"bad credentials"} for an unknown user or a wrong password (logins_refused)
//        -> 400 {"error":"..."} when the body is not JSON, or not an object with string `user`
//           and `password` (logins_bad); 413 when the body exceeds 64 KiB (logins_bad)
//   GET /stats -> 200 with every count below
//   anything else -> 404 {"error":"not found"}
//
// Socket.IO (path /socket.io/, namespace "/"):
//   handshake      auth {token}: a token from /login, else the connection is refused with the
//                  error "unauthorized" (counted in unauthorized). An accepted handshake counts in
//                  connections; it counts in connections_with_cookie when its Cookie header holds
//                  a `session` issued by /login to the same user, else in
//                  connections_without_cookie.
//   subscribe {channel: "c0"}, ack?
//                  subscribes the USER (not the socket: the subscription survives reconnects and
//                  covers every socket of the user; subscribing again changes nothing) and acks
//                  {ok: true, channel, next}: every message of the channel with seq >= next will
//                  be produced for the user. An unknown channel acks {ok: false, error}.
//   message {id: "c0:5", channel: "c0", seq: 5, ts, text}   (server -> client)
//   received {id}, ack?
//                  the application-level acknowledgement: removes the message from the user's
//                  queue and acks true (acked), or acks false when the id is not in the queue,
//                  unknown or acknowledged already (ack_unknown).
//   getAll ack?    emits every message still in the user's queue as a `message` event, in
//                  (channel index, seq) order, to this socket, and acks how many. Nothing is
//                  replayed (ack 0) when this socket's transport is no longer open.
//
// Publishing: on each tick every channel produces one message, seq 0, 1, 2, ... per channel. For
// every user subscribed to the channel at that moment the message is appended to the user's
// queue (produced). If the user has at least one socket that is connected and whose Engine.IO
// connection is "open", the message is emitted to each such socket right away (pushed_live);
// otherwise it only waits in the queue (queued_offline). A socket counts as the user's from its
// "connection" event to its "disconnect" event; a connection being closed (readyState "closing")
// counts as offline, since socket.io would silently discard what is written to it.
//
// Drops (--drop-every): on each round (every MS ms while publishing) user{i} is dropped
// floor(i * MS / N) ms later, so that drops are spread over the round rather than all at once.
// A drop is `socket.conn.close()` on every socket of the user whose connection is open (each
// counted in drops): Engine.IO flushes its write buffer and then closes the transport (a
// WebSocket close frame), so every message emitted before the drop still reaches the client,
// which sees "transport close" and reconnects. (Not `socket.disconnect()`: a Socket.IO DISCONNECT
// tells the client not to reconnect.) No drop happens once publishing has stopped.
//
// GET /stats:
//   {"publishing": "idle" | "running" | "done", "users_total": N, "publish_ticks": T,
//    "channels": {"c0": {"next": 30, "subscribers": 3}, ...},
//    "totals": {logins_ok, logins_refused, logins_bad, connections, connections_with_cookie,
//               connections_without_cookie, unauthorized, connected, drops, <message counts>},
//    "users": {"user17": {logins, connections, connections_with_cookie, connected, drops,
//                         channels: ["c0", ...], <message counts>}, ...}}
// `users` lists the users that logged in at least once; `connected` is the number of sockets
// connected right now; `next` is the seq the channel's next message will get (so the number of
// messages it produced); totals are the sums over users. Message counts, per user:
//   produced             messages appended to the user's queue (one per message of a channel the
//                        user was subscribed to when it was produced)
//   pushed_live          of those, emitted at once to a live socket (each message counts once, even
//                        when the user had several sockets)
//   queued_offline       of those, produced while the user had no live socket;
//                        produced = pushed_live + queued_offline
//   replayed             `message` events emitted by getAll (a message still unacknowledged is
//                        replayed again by every getAll)
//   replayed_after_live  replayed events of a message that had been pushed live
//   replayed_offline     replayed events of a message that had been queued offline;
//                        replayed = replayed_after_live + replayed_offline
//   recovered            distinct queued-offline messages emitted by a replay at least once
//   delivered            distinct messages emitted at least once to a socket of the user
//                        (live or by replay); delivered = pushed_live + recovered
//   never_delivered      produced - delivered: messages never emitted to any socket of the user
//                        = queued_offline - recovered
//   acked                `received` events that removed a message from the queue
//   ack_unknown          `received` events whose id was not in the queue
//   unacked              messages still in the queue; produced = acked + unacked
//
// Invariants the tests rely on, for a client that stays responsive (a connection is only ever
// lost by a server drop; a ping timeout or a client-side failure may lose what was in flight):
//   - every message event the server emits reaches the client: the client receives exactly
//     pushed_live + replayed `message` events;
//   - a message can only be missed by being produced while the user was offline (between a drop
//     and the next "connection"), i.e. the missed ones are exactly the queued_offline ones not
//     recovered by a replay;
//   - so, with a client that acknowledges every message it receives and calls getAll after every
//     reconnect, once publishing is done and the last getAll has been answered, never_delivered
//     is 0 (and unacked is 0 once its `received` events are all processed), and the client has
//     seen every seq from its subscription's `next` to the channel's final `next`;
//   - without getAll, replayed is 0, the client sees exactly the pushed_live messages, and
//     never_delivered = queued_offline = the number of messages of its channels (seqs from its
//     subscription's `next` to the final `next`) the client never saw.
"use strict";

const crypto = require("node:crypto");
const http = require("node:http");
const { parseArgs } = require("node:util");
const { Server } = require("socket.io");

function usage(message) {
  process.stderr.write(
    `message-queue.js: ${message}\n` +
      "usage: node message-queue.js --port PORT [--users N] [--channels C] [--publish-every MS] " +
      "[--publish-for MS] [--drop-every MS] [--drop-until MS] [--keep-stdin] [--verbose]\n",
  );
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: "string" },
        users: { type: "string", default: "1000" },
        channels: { type: "string", default: "2" },
        "publish-every": { type: "string", default: "100" },
        "publish-for": { type: "string", default: "3000" },
        "drop-every": { type: "string", default: "0" },
        "drop-until": { type: "string" },
        "keep-stdin": { type: "boolean", default: false },
        verbose: { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    usage(err.message);
  }
  const integer = (name, min) => {
    const text = values[name];
    if (text === undefined) return undefined;
    const n = Number(text);
    if (text.trim() === "" || !Number.isInteger(n) || n < min) {
      usage(`--${name} must be an integer >= ${min}, got "${text}"`);
    }
    return n;
  };
  const port = integer("port", 0);
  if (port === undefined) usage("--port is required (0 picks a free port)");
  if (port > 65535) usage(`--port must be at most 65535, got ${port}`);
  return {
    port,
    users: integer("users", 1),
    channels: integer("channels", 1),
    publishEvery: integer("publish-every", 1),
    publishFor: integer("publish-for", 0),
    dropEvery: integer("drop-every", 0),
    dropUntil: integer("drop-until", 0) ?? integer("publish-for", 0),
    keepStdin: values["keep-stdin"],
    verbose: values.verbose,
  };
}

const options = parseOptions();
const log = options.verbose ? (line) => process.stderr.write(`message-queue.js: ${line}\n`) : () => {};

// ---- state -----------------------------------------------------------------------------------

const MESSAGE_COUNTS = [
  "produced",
  "pushed_live",
  "queued_offline",
  "replayed",
  "replayed_after_live",
  "replayed_offline",
  "recovered",
  "delivered",
  "acked",
  "ack_unknown",
];

const totals = {
  logins_ok: 0,
  logins_refused: 0,
  logins_bad: 0,
  connections: 0,
  connections_with_cookie: 0,
  connections_without_cookie: 0,
  unauthorized: 0,
  drops: 0,
};

const channels = [];
for (let c = 0; c < options.channels; c += 1) {
  channels.push({ name: `c${c}`, index: c, next: 0, subscribers: new Set() });
}
const channelByName = new Map(channels.map((channel) => [channel.name, channel]));

// User state, created at the user's first successful login.
const users = new Map(); // index -> user
function userState(index) {
  let user = users.get(index);
  if (!user) {
    user = {
      index,
      name: `user${index}`,
      logins: 0,
      connections: 0,
      connections_with_cookie: 0,
      drops: 0,
      sockets: new Set(), // sockets between their "connection" and "disconnect" events
      channels: new Set(), // channel indexes
      // id -> {message, channel index, live: pushed live?, emitted: emitted at least once?}
      queue: new Map(),
      counts: Object.fromEntries(MESSAGE_COUNTS.map((name) => [name, 0])),
    };
    users.set(index, user);
  }
  return user;
}

const tokens = new Map(); // token -> user index
const sessions = new Map(); // session id -> user index

// The index of `name` when it is one of user0..user{N-1} (no leading zeros), else -1.
function userIndex(name) {
  const match = /^user(0|[1-9][0-9]*)$/.exec(name);
  if (!match) return -1;
  const index = Number(match[1]);
  return index < options.users ? index : -1;
}

const randomHex = () => crypto.randomBytes(16).toString("hex");

// ---- HTTP --------------------------------------------------------------------------------------

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

function handleLogin(req, res) {
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on("data", (chunk) => {
    if (tooLarge) return;
    size += chunk.length;
    if (size > MAX_BODY) {
      tooLarge = true;
      totals.logins_bad += 1;
      sendJson(res, 413, { error: "body too large" }, { Connection: "close" });
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", () => {
    if (tooLarge) return;
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      totals.logins_bad += 1;
      sendJson(res, 400, { error: "bad json" });
      return;
    }
    if (!body || typeof body !== "object" || typeof body.user !== "string" || typeof body.password !== "string") {
      totals.logins_bad += 1;
      sendJson(res, 400, { error: "expected {\"user\": string, \"password\": string}" });
      return;
    }
    const index = userIndex(body.user);
    if (index < 0 || body.password !== `pw${index}`) {
      totals.logins_refused += 1;
      log(`login refused user=${JSON.stringify(body.user)}`);
      sendJson(res, 401, { error: "bad credentials" });
      return;
    }
    const user = userState(index);
    const token = randomHex();
    const session = randomHex();
    tokens.set(token, index);
    sessions.set(session, index);
    user.logins += 1;
    totals.logins_ok += 1;
    log(`login ${user.name}`);
    sendJson(res, 200, { token, user: user.name }, { "Set-Cookie": `session=${session}; Path=/; HttpOnly` });
  });
  req.on("error", () => {});
}

function stats() {
  const sum = Object.fromEntries(MESSAGE_COUNTS.map((name) => [name, 0]));
  sum.never_delivered = 0;
  sum.unacked = 0;
  let connected = 0;
  const perUser = {};
  const sorted = [...users.values()].sort((a, b) => a.index - b.index);
  for (const user of sorted) {
    const counts = { ...user.counts };
    counts.never_delivered = counts.produced - counts.delivered;
    counts.unacked = user.queue.size;
    for (const [name, value] of Object.entries(counts)) sum[name] += value;
    connected += user.sockets.size;
    perUser[user.name] = {
      logins: user.logins,
      connections: user.connections,
      connections_with_cookie: user.connections_with_cookie,
      connected: user.sockets.size,
      drops: user.drops,
      channels: [...user.channels].sort((a, b) => a - b).map((c) => channels[c].name),
      ...counts,
    };
  }
  return {
    publishing: publishState,
    users_total: options.users,
    publish_ticks: Math.floor(options.publishFor / options.publishEvery),
    channels: Object.fromEntries(
      channels.map((channel) => [channel.name, { next: channel.next, subscribers: channel.subscribers.size }]),
    ),
    totals: { ...totals, connected, ...sum },
    users: perUser,
  };
}

function onRequest(req, res) {
  const path = new URL(req.url, "http://localhost").pathname;
  if (req.method === "POST" && path === "/login") {
    handleLogin(req, res);
  } else if (req.method === "GET" && path === "/stats") {
    sendJson(res, 200, stats());
  } else {
    req.resume();
    sendJson(res, 404, { error: "not found" });
  }
}

const httpServer = http.createServer(onRequest);
const io = new Server(httpServer, {});

// ---- Socket.IO ---------------------------------------------------------------------------------

// The trailing acknowledgement callback of an event, if the client asked for one.
function splitAck(args) {
  if (args.length > 0 && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, null];
}

// Whether what is emitted to `socket` now is written to its connection (socket.io silently
// discards packets written to an Engine.IO connection that is not "open").
const live = (socket) => socket.connected && socket.conn.readyState === "open";

function sessionCookie(header) {
  if (typeof header !== "string") return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === "session") return part.slice(eq + 1).trim();
  }
  return null;
}

io.use((socket, next) => {
  const auth = socket.handshake.auth;
  const token = auth && typeof auth.token === "string" ? auth.token : null;
  const index = token === null ? undefined : tokens.get(token);
  if (index === undefined) {
    totals.unauthorized += 1;
    log(`unauthorized handshake from ${socket.handshake.address}`);
    next(new Error("unauthorized"));
    return;
  }
  const user = userState(index);
  const session = sessionCookie(socket.handshake.headers.cookie);
  const withCookie = session !== null && sessions.get(session) === index;
  totals.connections += 1;
  user.connections += 1;
  if (withCookie) {
    totals.connections_with_cookie += 1;
    user.connections_with_cookie += 1;
  } else {
    totals.connections_without_cookie += 1;
  }
  socket.data.user = index;
  next();
});

io.on("connection", (socket) => {
  const user = userState(socket.data.user);
  user.sockets.add(socket);
  log(`connect ${user.name} sid=${socket.id}`);

  socket.on("disconnect", (reason) => {
    user.sockets.delete(socket);
    log(`disconnect ${user.name} sid=${socket.id} reason=${reason}`);
  });

  socket.on("subscribe", (...all) => {
    const [args, ack] = splitAck(all);
    const request = args[0] && typeof args[0] === "object" ? args[0] : {};
    const channel = typeof request.channel === "string" ? channelByName.get(request.channel) : undefined;
    if (!channel) {
      if (ack) ack({ ok: false, error: `unknown channel ${JSON.stringify(request.channel)}` });
      return;
    }
    user.channels.add(channel.index);
    channel.subscribers.add(user.index);
    log(`subscribe ${user.name} ${channel.name} next=${channel.next}`);
    startPublishing();
    if (ack) ack({ ok: true, channel: channel.name, next: channel.next });
  });

  socket.on("received", (...all) => {
    const [args, ack] = splitAck(all);
    const id = args[0] && typeof args[0] === "object" ? args[0].id : undefined;
    const removed = typeof id === "string" && user.queue.delete(id);
    user.counts[removed ? "acked" : "ack_unknown"] += 1;
    if (ack) ack(removed);
  });

  socket.on("getAll", (...all) => {
    const [, ack] = splitAck(all);
    let count = 0;
    if (live(socket)) {
      const entries = [...user.queue.values()].sort(
        (a, b) => a.channel - b.channel || a.message.seq - b.message.seq,
      );
      for (const entry of entries) {
        socket.emit("message", entry.message);
        count += 1;
        user.counts.replayed += 1;
        user.counts[entry.live ? "replayed_after_live" : "replayed_offline"] += 1;
        if (!entry.emitted) {
          entry.emitted = true;
          user.counts.recovered += 1;
          user.counts.delivered += 1;
        }
      }
    }
    log(`getAll ${user.name} sid=${socket.id} replayed=${count}`);
    if (ack) ack(count);
  });
});

// ---- publishing and drops ----------------------------------------------------------------------

let publishState = "idle";
let publishTimer = null;
let dropTimer = null;
let publishStartedAt = 0;
const pendingDrops = new Set();

function publishTick() {
  const ts = Date.now();
  for (const channel of channels) {
    const seq = channel.next;
    channel.next += 1;
    const message = { id: `${channel.name}:${seq}`, channel: channel.name, seq, ts, text: `${channel.name} message ${seq}` };
    for (const index of channel.subscribers) {
      const user = users.get(index);
      const entry = { message, channel: channel.index, live: false, emitted: false };
      user.queue.set(message.id, entry);
      user.counts.produced += 1;
      for (const socket of user.sockets) {
        if (live(socket)) {
          socket.emit("message", message);
          entry.live = true;
        }
      }
      if (entry.live) {
        entry.emitted = true;
        user.counts.pushed_live += 1;
        user.counts.delivered += 1;
      } else {
        user.counts.queued_offline += 1;
      }
    }
  }
}

function dropUser(user) {
  for (const socket of user.sockets) {
    if (socket.conn.readyState !== "open") continue;
    log(`drop ${user.name} sid=${socket.id}`);
    totals.drops += 1;
    user.drops += 1;
    socket.conn.close(); // flushes the write buffer, then closes the transport
  }
}

function dropRound() {
  for (const user of users.values()) {
    if (user.sockets.size === 0) continue;
    const timer = setTimeout(() => {
      pendingDrops.delete(timer);
      const early = Date.now() - publishStartedAt < options.dropUntil;
      if (publishState === "running" && early) dropUser(user);
    }, Math.floor((user.index * options.dropEvery) / options.users));
    pendingDrops.add(timer);
  }
}

function stopPublishing() {
  publishState = "done";
  clearInterval(publishTimer);
  clearInterval(dropTimer);
  for (const timer of pendingDrops) clearTimeout(timer);
  pendingDrops.clear();
  log("publishing done");
}

function startPublishing() {
  if (publishState !== "idle") return;
  publishState = "running";
  publishStartedAt = Date.now();
  const ticks = Math.floor(options.publishFor / options.publishEvery);
  log(`publishing ${ticks} messages per channel, one every ${options.publishEvery} ms`);
  if (ticks === 0) {
    stopPublishing();
    return;
  }
  let done = 0;
  publishTimer = setInterval(() => {
    publishTick();
    done += 1;
    if (done === ticks) stopPublishing();
  }, options.publishEvery);
  if (options.dropEvery > 0) dropTimer = setInterval(dropRound, options.dropEvery);
}

// ---- lifecycle ---------------------------------------------------------------------------------

let stopping = false;
function stop(why) {
  if (stopping) return;
  stopping = true;
  log(`stopping: ${why}`);
  clearInterval(publishTimer);
  clearInterval(dropTimer);
  for (const timer of pendingDrops) clearTimeout(timer);
  // Never wait for clients: a last resort exit if closing takes long.
  setTimeout(() => process.exit(0), 1000).unref();
  io.close(() => process.exit(0));
  httpServer.closeAllConnections();
}

process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));
if (!options.keepStdin) {
  process.stdin.on("end", () => stop("stdin closed"));
  process.stdin.on("close", () => stop("stdin closed"));
  process.stdin.on("error", () => stop("stdin error"));
  process.stdin.resume();
}

httpServer.on("error", (err) => {
  process.stderr.write(`message-queue.js: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(options.port, "127.0.0.1", () => {
  process.stdout.write(`listening on ${httpServer.address().port}\n`);
});
