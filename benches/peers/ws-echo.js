#!/usr/bin/env node
// A minimal Node WebSocket echo server (the npm `ws` package that socket.io brings along in
// tests/servers/socketio/node_modules), for benches/peers/run.py's echo-rates workload.
//
//   node ws-echo.js
//
// Listens on 127.0.0.1 on a free port and prints `listening on PORT`; on SIGTERM prints
// `messages N` (every message it echoed) on stderr and exits.
"use strict";

const path = require("node:path");
const { WebSocketServer } = require(
  path.join(__dirname, "..", "..", "tests", "servers", "socketio", "node_modules", "ws"),
);

const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
let messages = 0;
server.on("connection", (socket) => {
  socket.on("message", (data, isBinary) => {
    messages += 1;
    socket.send(data, { binary: isBinary });
  });
});
server.on("listening", () => process.stdout.write(`listening on ${server.address().port}\n`));
process.on("SIGTERM", () => {
  process.stderr.write(`messages ${messages}\n`);
  process.exit(0);
});
