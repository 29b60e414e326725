#!/usr/bin/env node
// A real Socket.IO server (the npm `socket.io` package) for volley's integration tests.
//
//   node server.js --port 0 [--ping-interval MS] [--ping-timeout MS] [--max-payload BYTES]
//                  [--tick-every MS] [--connect-delay MS] [--keep-alive-timeout MS] [--no-recovery]
//                  [--eio3] [--keep-stdin] [--verbose]
//
// Listens on 127.0.0.1 and prints `listening on PORT` on stdout once ready; nothing else is
// ever written to stdout. Exits on SIGTERM/SIGINT, and when stdin closes (so that a test process
// that dies never leaves a server behind; --keep-stdin turns that off for manual runs).
// --verbose logs connections and disconnect reasons on stderr.
//
// Namespaces "/" and "/admin" both handle:
//   echo ...args        -> emits `echo` ...args back to the sender (and acks them if asked)
//   ack ...args, cb     -> cb(...args)
//   join ROOM / leave ROOM
//   chat ...args        -> `chat` ...args to every room the sender joined, sender included
//                          (nothing when the sender joined no room)
//   cut {after, key}    -> after `after` ms, kills the client's transport abruptly (a recoverable
//                          disconnect), at most once per key for the life of the server; acks
//                          true when armed, false when the key was used already
//   freeze              -> the server stops pinging this client and stops timing it out
//   flaky {key, ignore}, cb -> counts the receipts of `key` and acks (with that count) only
//                          from receipt ignore+1 on: an emit whose first `ignore` attempts are
//                          never acknowledged (for retries)
//   ask X               -> emits `question` X asking for an ack; the client's answer comes back
//                          as `answered` with the answer's arguments
// and every --tick-every ms the server broadcasts `tick` {seq, ts} to the room `ticker`
// (seq counts from 0 per namespace). A handshake whose auth has a string `reject` is refused
// with that message. --connect-delay holds every namespace CONNECT that long in a middleware
// before accepting it: a slow authentication middleware. --keep-alive-timeout sets how long the
// http server keeps an idle keep-alive connection (Node's default: 5000 ms) before closing it.
//
// With connection state recovery (the default), socket.io appends an offset string as the last
// argument of every EVENT it emits without an ack id: broadcasts and `socket.emit` alike, so the
// `echo` reply too. Acks carry none.
"use strict";

const http = require("node:http");
const { parseArgs } = require("node:util");
const { Server } = require("socket.io");

function usage(message) {
  process.stderr.write(
    `server.js: ${message}\n` +
      "usage: node server.js --port PORT [--ping-interval MS] [--ping-timeout MS] " +
      "[--max-payload BYTES] [--tick-every MS] [--connect-delay MS] [--keep-alive-timeout MS] " +
      "[--no-recovery] [--eio3] [--keep-stdin] [--verbose]\n",
  );
  process.exit(2);
}

function parseOptions() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: "string" },
        "ping-interval": { type: "string" },
        "ping-timeout": { type: "string" },
        "max-payload": { type: "string" },
        "tick-every": { type: "string", default: "100" },
        "connect-delay": { type: "string", default: "0" },
        "keep-alive-timeout": { type: "string" },
        "no-recovery": { type: "boolean", default: false },
        eio3: { type: "boolean", default: false },
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
    if (!Number.isInteger(n) || n < min) usage(`--${name} must be an integer >= ${min}, got "${text}"`);
    return n;
  };
  const port = integer("port", 0);
  if (port === undefined) usage("--port is required (0 picks a free port)");
  if (port > 65535) usage(`--port must be at most 65535, got ${port}`);
  return {
    port,
    pingInterval: integer("ping-interval", 1),
    pingTimeout: integer("ping-timeout", 1),
    maxPayload: integer("max-payload", 1),
    tickEvery: integer("tick-every", 1),
    connectDelay: integer("connect-delay", 0),
    keepAliveTimeout: integer("keep-alive-timeout", 1),
    recovery: !values["no-recovery"],
    eio3: values.eio3,
    keepStdin: values["keep-stdin"],
    verbose: values.verbose,
  };
}

const options = parseOptions();
const log = options.verbose ? (line) => process.stderr.write(`server.js: ${line}\n`) : () => {};

const serverOptions = { allowEIO3: options.eio3 };
if (options.pingInterval !== undefined) serverOptions.pingInterval = options.pingInterval;
if (options.pingTimeout !== undefined) serverOptions.pingTimeout = options.pingTimeout;
if (options.maxPayload !== undefined) serverOptions.maxHttpBufferSize = options.maxPayload;
if (options.recovery) {
  serverOptions.connectionStateRecovery = {
    maxDisconnectionDuration: 2 * 60 * 1000,
    skipMiddlewares: true,
  };
}

const httpServer = http.createServer();
if (options.keepAliveTimeout !== undefined) httpServer.keepAliveTimeout = options.keepAliveTimeout;
const io = new Server(httpServer, serverOptions);

// Keys of the `cut` requests already honoured, for the life of the server.
const usedCutKeys = new Set();
// `flaky`: receipts per key, for the life of the server.
const flakyReceipts = new Map();

// The trailing acknowledgement callback of an event, if the client asked for one.
function splitAck(args) {
  if (args.length > 0 && typeof args[args.length - 1] === "function") {
    return [args.slice(0, -1), args[args.length - 1]];
  }
  return [args, null];
}

// Kills the Engine.IO connection's current transport without any goodbye: no Socket.IO
// DISCONNECT, no Engine.IO close packet, no WebSocket close frame; the TCP connection is just
// destroyed. Engine.IO then reports "transport close" (WebSocket) or "transport error" (polling),
// both of which connection state recovery treats as recoverable.
function killTransport(conn) {
  if (conn.readyState !== "open") return;
  const transport = conn.transport;
  if (transport.name === "websocket") {
    transport.socket.terminate(); // ws: destroys the TCP socket at once
    return;
  }
  // Polling: destroy the connection of a pending request, and close the session at once. Without
  // the explicit close, destroying a keep-alive connection whose request had just completed
  // leaves the session alive on the server (no "close" listener any more), so that it could not
  // be recovered; the client's next request then gets 400 "Session ID unknown".
  const pending = transport.req || transport.dataReq;
  if (pending) pending.socket.destroy();
  conn.onError("cut by the test server");
}

// Stops Engine.IO's heartbeat for this connection: no more PINGs to the client and no "ping
// timeout" on the server side. (engine.io's Socket keeps a `pingIntervalTimer` that sends the
// next PING, re-armed with refresh() on each PONG, and a `pingTimeoutTimer` armed after each
// PING; both are cleared, and the methods that would arm new ones become no-ops.)
function freezeHeartbeat(conn) {
  clearTimeout(conn.pingIntervalTimer);
  clearTimeout(conn.pingTimeoutTimer);
  conn.pingIntervalTimer = null;
  conn.pingTimeoutTimer = null;
  conn.schedulePing = () => {};
  conn.resetPingTimeout = () => {};
}

function setUpNamespace(name) {
  const nsp = io.of(name);

  nsp.use((socket, next) => {
    const reject = socket.handshake.auth && socket.handshake.auth.reject;
    if (typeof reject === "string") {
      next(new Error(reject));
    } else if (options.connectDelay > 0) {
      setTimeout(next, options.connectDelay);
    } else {
      next();
    }
  });

  nsp.on("connection", (socket) => {
    log(`connect ${name} sid=${socket.id} recovered=${socket.recovered}`);
    socket.on("disconnect", (reason) => log(`disconnect ${name} sid=${socket.id} reason=${reason}`));

    socket.on("echo", (...all) => {
      const [args, ack] = splitAck(all);
      socket.emit("echo", ...args);
      if (ack) ack(...args);
    });

    socket.on("ack", (...all) => {
      const [args, ack] = splitAck(all);
      if (ack) ack(...args);
    });

    socket.on("join", (...all) => {
      const [args, ack] = splitAck(all);
      if (typeof args[0] === "string") socket.join(args[0]);
      if (ack) ack();
    });

    socket.on("leave", (...all) => {
      const [args, ack] = splitAck(all);
      if (typeof args[0] === "string") socket.leave(args[0]);
      if (ack) ack();
    });

    socket.on("chat", (...all) => {
      const [args, ack] = splitAck(all);
      const rooms = [...socket.rooms].filter((room) => room !== socket.id);
      // An empty room list would mean "everyone in the namespace": send nothing instead.
      if (rooms.length > 0) nsp.to(rooms).emit("chat", ...args);
      if (ack) ack();
    });

    socket.on("cut", (...all) => {
      const [args, ack] = splitAck(all);
      const request = args[0] && typeof args[0] === "object" ? args[0] : {};
      const after = Number.isFinite(request.after) && request.after > 0 ? request.after : 0;
      const key = typeof request.key === "string" ? request.key : null;
      const armed = key === null || !usedCutKeys.has(key);
      if (armed) {
        if (key !== null) usedCutKeys.add(key);
        const conn = socket.conn;
        log(`cut ${name} sid=${socket.id} key=${key} in ${after} ms`);
        setTimeout(() => killTransport(conn), after);
      }
      if (ack) ack(armed);
    });

    socket.on("flaky", (...all) => {
      const [args, ack] = splitAck(all);
      const request = args[0] && typeof args[0] === "object" ? args[0] : {};
      const key = String(request.key);
      const seen = (flakyReceipts.get(key) || 0) + 1;
      flakyReceipts.set(key, seen);
      const ignore = Number.isInteger(request.ignore) ? request.ignore : 0;
      if (ack && seen > ignore) ack(seen);
    });

    socket.on("ask", (...all) => {
      const [args] = splitAck(all);
      socket.emit("question", args[0], (...reply) => socket.emit("answered", ...reply));
    });

    socket.on("freeze", (...all) => {
      const [, ack] = splitAck(all);
      log(`freeze ${name} sid=${socket.id}`);
      freezeHeartbeat(socket.conn);
      if (ack) ack();
    });
  });

  let seq = 0;
  const ticker = setInterval(() => {
    nsp.to("ticker").emit("tick", { seq, ts: Date.now() });
    seq += 1;
  }, options.tickEvery);
  ticker.unref();
}

setUpNamespace("/");
setUpNamespace("/admin");

let stopping = false;
function stop(why) {
  if (stopping) return;
  stopping = true;
  log(`stopping: ${why}`);
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
  process.stderr.write(`server.js: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(options.port, "127.0.0.1", () => {
  process.stdout.write(`listening on ${httpServer.address().port}\n`);
});
