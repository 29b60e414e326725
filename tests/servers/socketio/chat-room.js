#!/usr/bin/env node
// A chat app (npm `socket.io`) with an HTTP login and a test page, for the `volley record` tests:
// Chromium loads the page, which plays one real user's session (log in, connect, join, chat,
// answer the server's pings), and the tests capture that session as a HAR and through
// `volley inspect --jsonl`.
//
//   node chat-room.js --port 0 [--users N] [--ping-every MS] [--keep-stdin] [--verbose]
//
//   --users N          users user0..user{N-1}, user{i} has the password pw{i} (default 1000)
//   --ping-every MS    the server sends each socket a `ping` event every MS ms (default 500)
//
// Listens on 127.0.0.1 and prints `listening on PORT` on stdout once ready; nothing else is
// ever written to stdout. Exits on SIGTERM/SIGINT, and when stdin closes (--keep-stdin turns that
// off for manual runs). --verbose logs logins, connections and disconnects on stderr.
//
// HTTP, on the same server as Socket.IO:
//   GET /            the test page (pages/chat-room.html): logs in as user0, connects with the
//                    page's socket.io client (long-polling, then the upgrade to WebSocket), joins
//                    its own room `room-user0`, sends 5 chats 300 ms apart, answers every ping,
//                    disconnects after about 3 s, then sets `window.sessionDone` to what it did
//   GET /socket.io/socket.io.js   the browser client, served by socket.io itself (serveClient)
//   POST /login      see login.js: {"user","password"} -> {"token","user"} and a session cookie
//   GET /stats       the counts below, JSON
//   anything else -> 404 {"error":"not found"}
//
// Socket.IO (path /socket.io/, namespace "/"):
//   handshake      auth {token}: a token from /login, else the connection is refused with a
//                  CONNECT_ERROR "unauthorized" (connections_refused). An accepted one counts in
//                  the user's connects.
//   join {room}, ack
//                  joins the room and acks {ok: true, room, members} (members: sockets in the
//                  room now, this one included); a missing or non-string room acks
//                  {ok: false, error}.
//   chat {room, text, n}, ack
//                  n is the client's own counter, kept by nobody. Broadcasts `message`
//                  {room, from, text, seq} to everyone in the room, the sender included (seq
//                  counts from 1 per room), then acks {id, seq} (id: 16 hex, random per message).
//                  A chat to a room the socket has not joined acks {error} and is not counted.
//   ping {id}      (server -> client) every --ping-every ms on each socket, id 1, 2, 3... per
//                  socket. Not to be confused with Engine.IO's own ping packets, which socket.io
//                  sends too.
//   pong {id}      counted in pongs when id is one this socket was sent and not answered yet,
//                  else in pongs_unmatched.
//
// GET /stats:
//   {"users": {"user0": {logins, connects, joins, chats, chat_acks, messages, pings, pongs,
//                        pongs_unmatched, connected}, ...},
//    "totals": {the same keys, summed over users},
//    "logins_refused", "logins_bad", "connections_refused"}
// `users` lists the users that logged in at least once. chats counts accepted `chat` events,
// chat_acks the acks sent for them, messages the `message` events emitted to the user's sockets,
// pings the `ping` events sent, connected the user's sockets connected right now (0 once the
// page's disconnect has been processed).
"use strict";

const http = require("node:http");
const path = require("node:path");
const crypto = require("node:crypto");
const { Server } = require("socket.io");
const { Accounts, UserCounts, appRequests, parseAppOptions, stopOnSignals } = require("./login.js");

const options = parseAppOptions("chat-room.js", { "ping-every": "500" });
const log = options.log;

// ---- counts ------------------------------------------------------------------------------------

const COUNTS = ["logins", "connects", "joins", "chats", "chat_acks", "messages", "pings", "pongs", "pongs_unmatched"];
const counts = new UserCounts(COUNTS);
const userState = (name) => counts.user(name);
let connectionsRefused = 0;

const accounts = new Accounts(options.users);
accounts.onLogin = (name) => {
  userState(name).counts.logins += 1;
  log(`login ${name}`);
};

const stats = () => counts.stats(accounts, { connections_refused: connectionsRefused });

// ---- HTTP --------------------------------------------------------------------------------------

const onRequest = appRequests(path.join(__dirname, "pages", "chat-room.html"), accounts, stats);

const httpServer = http.createServer(onRequest);
const io = new Server(httpServer, { serveClient: true });

// ---- Socket.IO ---------------------------------------------------------------------------------

io.use((socket, next) => {
  const auth = socket.handshake.auth;
  const name = accounts.userOfToken(auth && auth.token);
  if (name === null) {
    connectionsRefused += 1;
    log(`refused a handshake from ${socket.handshake.address}`);
    next(new Error("unauthorized"));
    return;
  }
  socket.data.user = name;
  next();
});

// Each room's next message seq, from 1.
const roomSeq = new Map();

io.on("connection", (socket) => {
  const name = socket.data.user;
  const user = userState(name);
  user.counts.connects += 1;
  user.sockets.add(socket);
  log(`connect ${name} sid=${socket.id}`);

  // The ids of `ping` events sent to this socket and not answered yet.
  const unanswered = new Set();
  let nextPing = 1;
  const pinger = setInterval(() => {
    const id = nextPing;
    nextPing += 1;
    unanswered.add(id);
    user.counts.pings += 1;
    socket.emit("ping", { id });
  }, options.pingEvery);

  socket.on("disconnect", (reason) => {
    clearInterval(pinger);
    user.sockets.delete(socket);
    log(`disconnect ${name} sid=${socket.id} reason=${reason}`);
  });

  socket.on("join", (request, ack) => {
    const room = request && typeof request.room === "string" ? request.room : null;
    if (room === null) {
      if (typeof ack === "function") ack({ ok: false, error: "expected {room: string}" });
      return;
    }
    socket.join(room);
    user.counts.joins += 1;
    const members = io.sockets.adapter.rooms.get(room)?.size ?? 0;
    log(`join ${name} ${room} members=${members}`);
    if (typeof ack === "function") ack({ ok: true, room, members });
  });

  socket.on("chat", (request, ack) => {
    const room = request && typeof request.room === "string" ? request.room : null;
    if (room === null || !socket.rooms.has(room)) {
      if (typeof ack === "function") ack({ error: `not a member of room ${JSON.stringify(room)}` });
      return;
    }
    user.counts.chats += 1;
    const seq = (roomSeq.get(room) ?? 0) + 1;
    roomSeq.set(room, seq);
    const text = typeof request.text === "string" ? request.text : "";
    for (const id of io.sockets.adapter.rooms.get(room) ?? []) {
      const member = io.sockets.sockets.get(id);
      if (member) userState(member.data.user).counts.messages += 1;
    }
    io.to(room).emit("message", { room, from: name, text, seq });
    if (typeof ack === "function") {
      user.counts.chat_acks += 1;
      ack({ id: crypto.randomBytes(8).toString("hex"), seq });
    }
  });

  socket.on("pong", (answer) => {
    const id = answer && answer.id;
    if (unanswered.delete(id)) {
      user.counts.pongs += 1;
    } else {
      user.counts.pongs_unmatched += 1;
    }
  });
});

// ---- lifecycle ---------------------------------------------------------------------------------

stopOnSignals(options.keepStdin, (why) => {
  log(`stopping: ${why}`);
  io.close(() => process.exit(0));
  httpServer.closeAllConnections();
});

httpServer.on("error", (err) => {
  process.stderr.write(`chat-room.js: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(options.port, "127.0.0.1", () => {
  process.stdout.write(`listening on ${httpServer.address().port}\n`);
});
