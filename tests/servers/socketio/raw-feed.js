#!/usr/bin/env node
// A price feed over a raw WebSocket (npm `ws`, JSON text messages) with an HTTP login and a test
// page, for the `volley record` tests: Chromium loads the page, which plays one real user's
// session (log in, open the feed, subscribe, answer pings, send echoes), and the tests capture
// that session as a HAR and through `volley inspect --jsonl`.
//
//   node raw-feed.js --port 0 [--users N] [--ping-every MS] [--tick-every MS] [--keep-stdin]
//                    [--verbose]
//
//   --users N          users user0..user{N-1}, user{i} has the password pw{i} (default 1000)
//   --ping-every MS    the server sends each connection a ping message every MS ms (default 500)
//   --tick-every MS    one tick per subscribed topic every MS ms (default 100)
//
// Listens on 127.0.0.1 and prints `listening on PORT` on stdout once ready; nothing else is
// ever written to stdout. Exits on SIGTERM/SIGINT, and when stdin closes (--keep-stdin turns that
// off for manual runs). --verbose logs logins, connections and closes on stderr.
//
// HTTP:
//   GET /            the test page (pages/raw-feed.html): logs in as user0, opens the feed,
//                    subscribes to `prices`, answers every ping, sends 5 echoes 300 ms apart,
//                    closes after about 3 s, then sets `window.sessionDone` to what it did
//   POST /login      see login.js: {"user","password"} -> {"token","user"} and a session cookie
//   GET /stats       the counts below, JSON
//   anything else -> 404 {"error":"not found"}
//
// WebSocket, GET /feed?token=TOKEN (a token from /login; any other path, or a missing or unknown
// token, is answered 401 without the upgrade and counted in upgrades_refused). Every message is
// one JSON object in a text frame:
//   client {"type":"subscribe","topic":"prices","id":1}
//     -> server {"type":"subscribed","topic":"prices","id":1} (id copied as sent), then
//        {"type":"tick","topic":"prices","seq":N,"ts":EPOCH_MS,"price":P} every --tick-every ms,
//        seq from 1 per connection and topic, price a random walk from 100.00 (2 decimals).
//        Subscribing again to a topic already subscribed answers `subscribed` and changes nothing.
//   server {"type":"ping","id":K} every --ping-every ms, K = 1, 2, 3... per connection
//     <- client {"type":"pong","id":K}: counted in pongs when K was sent on this connection and
//        not answered yet, else in pongs_unmatched
//   client {"type":"echo","n":I,"text":"..."} -> the same object sent back (parsed and written
//        again: the same keys in the same order)
//   anything else (not JSON, not an object, an unknown type, a topic that is not a non-empty
//   string) -> {"type":"error","error":"..."}, counted in errors
//
// GET /stats:
//   {"users": {"user0": {logins, connections, subscribes, echoes, ticks, pings, pongs,
//                        pongs_unmatched, errors, connected}, ...},
//    "totals": {the same keys, summed over users},
//    "logins_refused", "logins_bad", "upgrades_refused"}
// `users` lists the users that logged in at least once. ticks counts the ticks sent, pings the
// pings sent, connected the user's connections open right now (0 once the page's close has been
// processed).
"use strict";

const http = require("node:http");
const path = require("node:path");
const { WebSocketServer } = require("ws");
const { Accounts, UserCounts, appRequests, parseAppOptions, stopOnSignals } = require("./login.js");

const options = parseAppOptions("raw-feed.js", { "ping-every": "500", "tick-every": "100" });
const log = options.log;

// ---- counts ------------------------------------------------------------------------------------

const COUNTS = ["logins", "connections", "subscribes", "echoes", "ticks", "pings", "pongs", "pongs_unmatched", "errors"];
const counts = new UserCounts(COUNTS);
const userState = (name) => counts.user(name);
let upgradesRefused = 0;

const accounts = new Accounts(options.users);
accounts.onLogin = (name) => {
  userState(name).counts.logins += 1;
  log(`login ${name}`);
};

const stats = () => counts.stats(accounts, { upgrades_refused: upgradesRefused });

// ---- HTTP --------------------------------------------------------------------------------------

const onRequest = appRequests(path.join(__dirname, "pages", "raw-feed.html"), accounts, stats);

const httpServer = http.createServer(onRequest);
const wss = new WebSocketServer({ noServer: true });

httpServer.on("upgrade", (req, socket, head) => {
  const url = new URL(req.url, "http://localhost");
  const name = url.pathname === "/feed" ? accounts.userOfToken(url.searchParams.get("token")) : null;
  if (name === null) {
    upgradesRefused += 1;
    log(`refused an upgrade to ${url.pathname}`);
    const body = '{"error":"unauthorized"}';
    socket.end(
      "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n" +
        `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
    );
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => feed(ws, name));
});

// ---- the feed ----------------------------------------------------------------------------------

function feed(ws, name) {
  const user = userState(name);
  user.counts.connections += 1;
  user.sockets.add(ws);
  log(`connection ${name}`);
  const send = (message) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  };
  const fail = (error) => {
    user.counts.errors += 1;
    send({ type: "error", error });
  };

  // The ids of pings sent on this connection and not answered yet.
  const unanswered = new Set();
  let nextPing = 1;
  const pinger = setInterval(() => {
    const id = nextPing;
    nextPing += 1;
    unanswered.add(id);
    user.counts.pings += 1;
    send({ type: "ping", id });
  }, options.pingEvery);

  const tickers = new Map(); // topic -> interval
  const subscribe = (topic) => {
    if (tickers.has(topic)) return;
    let seq = 0;
    let price = 100;
    tickers.set(
      topic,
      setInterval(() => {
        seq += 1;
        price = Math.max(0.01, Math.round((price + (Math.random() - 0.5)) * 100) / 100);
        user.counts.ticks += 1;
        send({ type: "tick", topic, seq, ts: Date.now(), price });
      }, options.tickEvery),
    );
  };

  ws.on("message", (data, isBinary) => {
    let message;
    try {
      message = isBinary ? null : JSON.parse(data.toString("utf8"));
    } catch {
      message = null;
    }
    if (!message || typeof message !== "object" || Array.isArray(message)) {
      fail("expected a JSON object in a text frame");
      return;
    }
    switch (message.type) {
      case "subscribe":
        if (typeof message.topic !== "string" || message.topic === "") {
          fail("subscribe needs a non-empty string topic");
          return;
        }
        user.counts.subscribes += 1;
        send({ type: "subscribed", topic: message.topic, id: message.id });
        subscribe(message.topic);
        break;
      case "pong":
        if (unanswered.delete(message.id)) {
          user.counts.pongs += 1;
        } else {
          user.counts.pongs_unmatched += 1;
        }
        break;
      case "echo":
        user.counts.echoes += 1;
        send(message);
        break;
      default:
        fail(`unknown type ${JSON.stringify(message.type)}`);
    }
  });

  ws.on("close", (code) => {
    clearInterval(pinger);
    for (const ticker of tickers.values()) clearInterval(ticker);
    user.sockets.delete(ws);
    log(`close ${name} code=${code}`);
  });
  ws.on("error", () => {});
}

// ---- lifecycle ---------------------------------------------------------------------------------

stopOnSignals(options.keepStdin, (why) => {
  log(`stopping: ${why}`);
  for (const ws of wss.clients) ws.terminate();
  wss.close();
  httpServer.close(() => process.exit(0));
  httpServer.closeAllConnections();
});

httpServer.on("error", (err) => {
  process.stderr.write(`raw-feed.js: ${err.message}\n`);
  process.exit(1);
});

httpServer.listen(options.port, "127.0.0.1", () => {
  process.stdout.write(`listening on ${httpServer.address().port}\n`);
});
