#!/usr/bin/env node
// A smoke check of message-queue.js with real socket.io-client clients:
//
//   node message-queue-check.js [--verbose]
//
// Runs the server twice (--users 3 --channels 2 --drop-every 500, a few seconds of publishing),
// each time with 3 clients that log in over HTTP, connect over WebSocket with the token and the
// session cookie, subscribe to c0 and c1 and acknowledge every message they receive (resending,
// after a reconnect, the acknowledgements the server has not confirmed). In the first run they
// call getAll after every reconnect, in the second they do not. Once publishing is done and
// everything settled, it compares what each client saw with /stats:
//   with getAll     never_delivered 0, unacked 0, every seq from the subscription on was seen
//   without getAll  never_delivered = queued_offline = the number of seqs the client missed
//                   (and at least one was missed, else the check proves nothing)
// plus, in both: the client received exactly pushed_live + replayed `message` events, acked =
// distinct messages seen, every connection carried the cookie, connections and drops match what
// the client saw. The first run also checks the refusals (401, 400, 404, unauthorized).
// Prints a summary line per run on stdout; exits 1 on any mismatch (details on stderr) or when it
// takes more than 14 s.
"use strict";

const path = require("node:path");
const { spawn } = require("node:child_process");
const { parseArgs } = require("node:util");
const { io } = require("socket.io-client");

const { values: flags } = parseArgs({ options: { verbose: { type: "boolean", default: false } }, strict: true });
const SERVER = path.join(__dirname, "message-queue.js");
const USERS = 3;
const CHANNELS = ["c0", "c1"];
const SERVER_ARGS = ["--users", String(USERS), "--channels", "2", "--publish-every", "40", "--publish-for", "2000", "--drop-every", "500"];

const children = new Set();
const clients = new Set();
function cleanUp() {
  for (const client of clients) client.socket.disconnect();
  for (const child of children) child.kill("SIGTERM");
}
function fatal(message) {
  process.stderr.write(`message-queue-check.js: ${message}\n`);
  cleanUp();
  process.exit(1);
}
setTimeout(() => fatal("not done within 14 s"), 14000).unref();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function startServer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SERVER, "--port", "0", ...args], {
      stdio: ["pipe", "pipe", "inherit"],
    });
    children.add(child);
    let out = "";
    let port = null;
    child.stdout.on("data", (chunk) => {
      out += chunk;
      if (!out.includes("\n")) return;
      const match = /^listening on (\d+)\n$/.exec(out);
      if (port === null && match) {
        port = Number(match[1]);
        resolve({ child, port });
      } else {
        fatal(`unexpected stdout from the server: ${JSON.stringify(out)}`);
      }
    });
    child.on("exit", (code, signal) => {
      children.delete(child);
      if (port === null) reject(new Error(`server exited early (${code ?? signal})`));
    });
  });
}

function stopServer(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
    child.once("exit", (code) => resolve(code));
    child.kill("SIGTERM");
  });
}

async function post(base, route, body) {
  const res = await fetch(`${base}${route}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json(), cookie: res.headers.get("set-cookie") };
}

async function getStats(base) {
  const res = await fetch(`${base}/stats`);
  if (res.status !== 200) fatal(`/stats answered ${res.status}`);
  return res.json();
}

// One user's client: logs what it sees, acknowledges everything, replays when asked to.
function startClient(base, name, token, cookie, useGetAll) {
  const client = {
    name,
    seen: Object.fromEntries(CHANNELS.map((c) => [c, new Map()])), // seq -> times received
    events: 0,
    firstNext: {}, // channel -> `next` of the first subscribe ack
    unconfirmed: new Set(), // ids acknowledged whose `received` the server has not answered yet
    getAllPending: false,
    getAllGeneration: 0,
    connects: 0,
    disconnects: 0,
    disconnectReasons: {},
    connectErrors: 0,
  };
  const socket = io(base, {
    transports: ["websocket"],
    auth: { token },
    extraHeaders: { Cookie: cookie },
    reconnectionDelay: 150,
    reconnectionDelayMax: 150,
    randomizationFactor: 0,
  });
  client.socket = socket;

  const confirm = (id) => socket.emit("received", { id }, () => client.unconfirmed.delete(id));

  socket.on("connect", () => {
    client.connects += 1;
    for (const channel of CHANNELS) {
      if (channel in client.firstNext) continue;
      socket.emit("subscribe", { channel }, (reply) => {
        if (!reply || reply.ok !== true || reply.channel !== channel) fatal(`${name}: subscribe ${channel}: ${JSON.stringify(reply)}`);
        if (!(channel in client.firstNext)) client.firstNext[channel] = reply.next;
      });
    }
    if (client.connects > 1) {
      for (const id of client.unconfirmed) confirm(id);
      if (useGetAll) {
        const generation = ++client.getAllGeneration;
        client.getAllPending = true;
        socket.emit("getAll", (count) => {
          if (typeof count !== "number") fatal(`${name}: getAll acked ${JSON.stringify(count)}`);
          if (generation === client.getAllGeneration) client.getAllPending = false;
        });
      }
    }
  });
  socket.on("disconnect", (reason) => {
    client.disconnects += 1;
    client.disconnectReasons[reason] = (client.disconnectReasons[reason] || 0) + 1;
  });
  socket.on("connect_error", (err) => {
    client.connectErrors += 1;
    fatal(`${name}: connect_error ${err.message}`);
  });
  socket.on("message", (message) => {
    client.events += 1;
    const seen = client.seen[message.channel];
    if (!seen || message.id !== `${message.channel}:${message.seq}`) fatal(`${name}: odd message ${JSON.stringify(message)}`);
    seen.set(message.seq, (seen.get(message.seq) || 0) + 1);
    client.unconfirmed.add(message.id);
    confirm(message.id);
  });
  clients.add(client);
  return client;
}

// Refusals: the wrong password, an unknown user, bad JSON, an unknown route, a bad token.
async function checkRefusals(base, problems) {
  const wrong = await post(base, "/login", { user: "user1", password: "pw2" });
  if (wrong.status !== 401 || wrong.json.error !== "bad credentials") problems.push(`wrong password: ${wrong.status} ${JSON.stringify(wrong.json)}`);
  const unknown = await post(base, "/login", { user: `user${USERS}`, password: `pw${USERS}` });
  if (unknown.status !== 401) problems.push(`unknown user: ${unknown.status}`);
  const bad = await post(base, "/login", "{not json");
  if (bad.status !== 400) problems.push(`bad json: ${bad.status}`);
  const missing = await fetch(`${base}/nope`);
  await missing.text();
  if (missing.status !== 404) problems.push(`/nope: ${missing.status}`);
  const error = await new Promise((resolve) => {
    const socket = io(base, { transports: ["websocket"], auth: { token: "nope" }, reconnection: false });
    socket.on("connect", () => {
      socket.disconnect();
      resolve("connected");
    });
    socket.on("connect_error", (err) => {
      socket.disconnect();
      resolve(err.message);
    });
  });
  if (error !== "unauthorized") problems.push(`bad token: ${error}`);
}

async function run(useGetAll) {
  const label = useGetAll ? "getAll" : "no-getAll";
  const started = Date.now();
  const { child, port } = await startServer(SERVER_ARGS);
  const base = `http://127.0.0.1:${port}`;
  const problems = [];
  if (useGetAll) await checkRefusals(base, problems);

  const runClients = [];
  for (let i = 0; i < USERS; i += 1) {
    const login = await post(base, "/login", { user: `user${i}`, password: `pw${i}` });
    if (login.status !== 200 || login.json.user !== `user${i}` || !/^[0-9a-f]{32}$/.test(login.json.token)) {
      fatal(`login user${i}: ${login.status} ${JSON.stringify(login.json)}`);
    }
    const match = /^session=([^;]+); Path=\/; HttpOnly$/.exec(login.cookie || "");
    if (!match) fatal(`login user${i}: Set-Cookie ${JSON.stringify(login.cookie)}`);
    runClients.push(startClient(base, `user${i}`, login.json.token, `session=${match[1]}`, useGetAll));
  }

  // Settle: publishing done, every user connected once on the server, and every client connected,
  // subscribed, with no acknowledgement or getAll left unanswered.
  let stats;
  for (;;) {
    await sleep(100);
    stats = await getStats(base);
    const serverSettled =
      stats.publishing === "done" && runClients.every((c) => stats.users[c.name] && stats.users[c.name].connected === 1);
    const clientsSettled = runClients.every(
      (c) => c.socket.connected && c.unconfirmed.size === 0 && !c.getAllPending && Object.keys(c.firstNext).length === CHANNELS.length,
    );
    if (serverSettled && clientsSettled) break;
  }
  stats = await getStats(base);

  // Compare.
  const summary = { missed: 0, duplicates: 0, seen: 0, drops: stats.totals.drops };
  for (const client of runClients) {
    const user = stats.users[client.name];
    const fail = (what) => problems.push(`${client.name}: ${what}`);
    let expected = 0;
    let missing = 0;
    let distinct = 0;
    let duplicates = 0;
    for (const channel of CHANNELS) {
      const from = client.firstNext[channel];
      const to = stats.channels[channel].next;
      expected += to - from;
      for (let seq = from; seq < to; seq += 1) if (!client.seen[channel].has(seq)) missing += 1;
      for (const [seq, times] of client.seen[channel]) {
        if (seq < from || seq >= to) fail(`saw ${channel}:${seq} outside [${from}, ${to})`);
        distinct += 1;
        duplicates += times - 1;
      }
    }
    summary.missed += missing;
    summary.duplicates += duplicates;
    summary.seen += distinct;
    const expect = (name, actual, wanted) => {
      if (actual !== wanted) fail(`${name} is ${actual}, expected ${wanted}`);
    };
    expect("produced", user.produced, expected);
    expect("produced (= pushed_live + queued_offline)", user.produced, user.pushed_live + user.queued_offline);
    expect("message events received by the client", client.events, user.pushed_live + user.replayed);
    expect("acked", user.acked, distinct);
    expect("unacked", user.unacked, user.produced - user.acked);
    expect("never_delivered", user.never_delivered, user.produced - user.delivered);
    expect("connections", user.connections, client.connects);
    expect("connections_with_cookie", user.connections_with_cookie, user.connections);
    expect("drops", user.drops, client.disconnects);
    expect("disconnect reasons", JSON.stringify(client.disconnectReasons), user.drops > 0 ? JSON.stringify({ "transport close": user.drops }) : "{}");
    if (user.drops === 0) fail("was never dropped");
    if (useGetAll) {
      expect("never_delivered", user.never_delivered, 0);
      expect("seqs missed by the client", missing, 0);
      expect("unacked", user.unacked, 0);
      expect("recovered", user.recovered, user.queued_offline);
    } else {
      expect("replayed", user.replayed, 0);
      expect("never_delivered", user.never_delivered, missing);
      expect("queued_offline", user.queued_offline, missing);
      expect("pushed_live", user.pushed_live, distinct);
      expect("duplicates seen by the client", duplicates, 0);
    }
    if (flags.verbose) {
      process.stderr.write(`${label} ${client.name}: client ${JSON.stringify({ events: client.events, distinct, missing, duplicates, connects: client.connects })} server ${JSON.stringify(user)}\n`);
    }
  }
  const t = stats.totals;
  if (t.connections_without_cookie !== 0) problems.push(`connections_without_cookie is ${t.connections_without_cookie}`);
  if (useGetAll) {
    if (t.logins_refused !== 2 || t.logins_bad !== 1 || t.unauthorized !== 1) {
      problems.push(`refusal counts: logins_refused ${t.logins_refused} logins_bad ${t.logins_bad} unauthorized ${t.unauthorized}`);
    }
    if (t.replayed_offline === 0) problems.push("nothing was replayed after a drop: the check proves nothing");
  } else if (summary.missed === 0) {
    problems.push("no client missed anything: the check proves nothing");
  }
  if (t.logins_ok !== USERS) problems.push(`logins_ok is ${t.logins_ok}`);

  for (const client of runClients) {
    client.socket.disconnect();
    clients.delete(client);
  }
  const code = await stopServer(child);
  if (code !== 0) problems.push(`server exited with ${code}`);

  const ms = Date.now() - started;
  process.stdout.write(
    `${label}: ${problems.length === 0 ? "ok" : "FAILED"} in ${ms} ms: ${CHANNELS.map((c) => `${c} next ${stats.channels[c].next}`).join(", ")}; ` +
      `produced ${t.produced}, pushed_live ${t.pushed_live}, queued_offline ${t.queued_offline}, replayed ${t.replayed} ` +
      `(${t.replayed_offline} offline, ${t.replayed_after_live} after live), never_delivered ${t.never_delivered}, ` +
      `missed by clients ${summary.missed}, duplicates ${summary.duplicates}, acked ${t.acked}, ack_unknown ${t.ack_unknown}, ` +
      `unacked ${t.unacked}, drops ${t.drops}, connections ${t.connections} (with cookie ${t.connections_with_cookie})\n`,
  );
  return problems;
}

async function main() {
  const problems = [...(await run(true)), ...(await run(false))];
  for (const problem of problems) process.stderr.write(`message-queue-check.js: ${problem}\n`);
  cleanUp();
  process.exit(problems.length === 0 ? 0 : 1);
}

main().catch((err) => fatal(err.stack || String(err)));
