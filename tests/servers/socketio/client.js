#!/usr/bin/env node
// A real Socket.IO client (the npm `socket.io-client` package) for volley's integration tests:
// one session against server.js, as a browser would open it, with a report of what it saw.
//
//   node client.js URL [--timeout MS]
//
// Connects to URL (http://host:port) with the default transports: long-polling first, then the
// upgrade to WebSocket. Once upgraded it runs a fixed script, one step at a time:
//   "/"       ack 1 "two" {three:[3]} (acked)     echo {text} (acked: the echo and the ack)
//             echo {name, data: Buffer 0..255} (acked: binary both ways)
//             join "room1" (acked)   chat "hi all" (acked: the chat and the ack)
//             echo "no ack wanted" (not acked: the echo only)
//   "/admin"  connects on the same connection, ack "admin" 2 (acked)
// then disconnects both namespaces, waits for the connection to close, and prints one JSON line
// on stdout. Everything in it is deterministic except `wire`, the Engine.IO packets this client
// sent and received (whether the server sends a noop to a held polling request during the
// upgrade depends on timing). Exits 0 when the script ran, 1 (with the reason on stderr) when a
// step failed or the timeout passed.
//
// Trailing offsets: with connection state recovery, server.js appends an offset string to every
// event it emits without an ack id. They differ from run to run, so the report leaves them out of
// the arguments and counts them in `offsets` instead.
"use strict";

const { parseArgs } = require("node:util");
const { io } = require("socket.io-client");

function usage(message) {
  process.stderr.write(`client.js: ${message}\nusage: node client.js URL [--timeout MS]\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: { timeout: { type: "string", default: "10000" } },
    allowPositionals: true,
    strict: true,
  });
} catch (err) {
  usage(err.message);
}
if (parsed.positionals.length !== 1) usage("exactly one URL is needed");
const url = parsed.positionals[0];
const timeoutMs = Number(parsed.values.timeout);
if (!Number.isInteger(timeoutMs) || timeoutMs < 1) usage(`--timeout must be a positive integer, got "${parsed.values.timeout}"`);

function fail(message) {
  process.stderr.write(`client.js: ${message}\n`);
  process.exit(1);
}
setTimeout(() => fail(`not done within ${timeoutMs} ms`), timeoutMs).unref();

const report = {
  first_transport: null,
  transport: null,
  connected: [],
  ack: null,
  echo: null,
  binary: null,
  chat: null,
  no_ack_echo: null,
  admin_ack: null,
  offsets: 0,
  emitted: {},
  received: {},
  wire: { sent: {}, received: {} },
};

const count = (table, key) => {
  table[key] = (table[key] || 0) + 1;
};

// Reconnection off: a failure must show as a failure, not as a retried step.
const root = io(url, { reconnection: false });
const manager = root.io;
const engine = manager.engine;
// The engine exists as soon as io() returns; its first request is not sent yet.
engine.on("packetCreate", (packet) => count(report.wire.sent, packet.type));
engine.on("packet", (packet) => count(report.wire.received, packet.type));
report.first_transport = engine.transport.name;

const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));

// Whether server.js runs with connection state recovery: then the CONNECT reply had a pid.
const recovering = (socket) => typeof socket._pid === "string";

// Event arguments without the trailing recovery offset (counted in `offsets`).
function withoutOffset(socket, args) {
  if (recovering(socket) && args.length > 0 && typeof args[args.length - 1] === "string") {
    report.offsets += 1;
    return args.slice(0, -1);
  }
  return args;
}

function connected(socket, name) {
  return new Promise((resolve, reject) => {
    if (socket.connected) return resolve();
    socket.once("connect", () => {
      report.connected.push(name);
      resolve();
    });
    socket.once("connect_error", (err) => reject(new Error(`connect to ${name}: ${err.message}`)));
  });
}

function upgraded() {
  return new Promise((resolve, reject) => {
    if (engine.transport.name === "websocket") return resolve();
    engine.once("upgrade", () => resolve());
    engine.once("upgradeError", (err) => reject(new Error(`upgrade: ${err.message}`)));
  });
}

// Emits and resolves with every argument of the ack.
function emitAcked(socket, event, ...args) {
  count(report.emitted, args.some(hasBuffer) ? "BINARY_EVENT" : "EVENT");
  return new Promise((resolve) => {
    socket.emit(event, ...args, (...reply) => {
      count(report.received, reply.some(hasBuffer) ? "BINARY_ACK" : "ACK");
      resolve(reply);
    });
  });
}

function emitUnacked(socket, event, ...args) {
  count(report.emitted, args.some(hasBuffer) ? "BINARY_EVENT" : "EVENT");
  socket.emit(event, ...args);
}

function hasBuffer(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer) return true;
  if (Array.isArray(value)) return value.some(hasBuffer);
  if (value && typeof value === "object") return Object.values(value).some(hasBuffer);
  return false;
}

// The next `event` on `socket`, its arguments without the recovery offset.
function next(socket, event) {
  return new Promise((resolve) => {
    socket.once(event, (...args) => {
      count(report.received, args.some(hasBuffer) ? "BINARY_EVENT" : "EVENT");
      resolve(withoutOffset(socket, args));
    });
  });
}

function closed() {
  return new Promise((resolve) => engine.once("close", () => resolve()));
}

async function main() {
  await connected(root, "/");
  await upgraded();
  report.transport = engine.transport.name;

  report.ack = await emitAcked(root, "ack", 1, "two", { three: [3] });

  const echoed = next(root, "echo");
  const echoAck = await emitAcked(root, "echo", { text: "hello" });
  report.echo = { event: await echoed, ack: echoAck };

  const binaryEchoed = next(root, "echo");
  const binaryAck = await emitAcked(root, "echo", { name: "bytes", data: bytes });
  const binaryEvent = await binaryEchoed;
  report.binary = {
    length: bytes.length,
    event_intact: Buffer.isBuffer(binaryEvent[0].data) && binaryEvent[0].data.equals(bytes),
    ack_intact: Buffer.isBuffer(binaryAck[0].data) && binaryAck[0].data.equals(bytes),
    name: binaryEvent[0].name,
  };

  await emitAcked(root, "join", "room1");
  const chatted = next(root, "chat");
  const chatAck = await emitAcked(root, "chat", "hi all");
  report.chat = { event: await chatted, ack: chatAck };

  const unacked = next(root, "echo");
  emitUnacked(root, "echo", "no ack wanted");
  report.no_ack_echo = await unacked;

  // A second namespace over the same Engine.IO connection (the manager is shared).
  const admin = io(`${url}/admin`, { reconnection: false });
  await connected(admin, "/admin");
  report.admin_ack = await emitAcked(admin, "ack", "admin", 2);

  const done = closed();
  admin.disconnect();
  root.disconnect();
  await done;
  // Kept-alive polling connections may hold the event loop: exit once the line is out.
  process.stdout.write(`${JSON.stringify(report)}\n`, () => process.exit(0));
}

main().catch((err) => fail(err.stack || String(err)));
