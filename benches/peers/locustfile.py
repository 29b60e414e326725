"""Locust's side of benches/peers/run.py's `conversation` workload, against the message-queue test
server (tests/servers/socketio/message-queue.js).

Each Locust user takes its own account (user0, user1, ... in the order the users start), then:
  1. logs in with `POST /login` through Locust's HTTP client (a request in Locust's stats),
  2. connects a python-socketio Client over the websocket transport with auth {token} and the
     session cookie the login set,
  3. subscribes to c0 and c1, waiting for each acknowledgement,
  4. answers every pushed `message` {id, channel, seq, ts} with `received` {id}, and records the
     message's one-way latency (now - ts) in Locust's stats, as an event named `message`.

Beside Locust's own stats it counts what arrived, per user and channel, by the messages' `seq`:
received, answered, read after the user's disconnect (so not answered), gaps (seqs skipped),
duplicates and reorders; at exit the totals go as one JSON object to the file named by
VOLLEY_PEERS_LOCUST_OUT, if set.

    locust -f benches/peers/locustfile.py --headless -u 100 -r 100 -t 30s \
        --host http://127.0.0.1:PORT
"""

import itertools
import json
import os
import time

import socketio
from locust import HttpUser, constant, events, task

CHANNELS = ("c0", "c1")
NEXT_USER = itertools.count()
TOTALS = {"users": 0, "connected": 0, "subscribed": 0, "received": 0, "replied": 0,
          "unanswered": 0, "gaps": 0, "duplicates": 0, "reorders": 0, "errors": 0}


class ChatUser(HttpUser):
    # The users do nothing on their own: everything they send answers the server. The task does
    # nothing; between its runs the user's greenlet sleeps for wait_time.
    wait_time = constant(1)

    def on_start(self):
        TOTALS["users"] += 1
        n = next(NEXT_USER)
        self.last_seq = {}  # channel -> highest seq seen
        self.seen = {}  # channel -> set of seqs seen (duplicates)
        response = self.client.post("/login", json={"user": f"user{n}", "password": f"pw{n}"},
                                    name="login")
        if response.status_code != 200:
            TOTALS["errors"] += 1
            self.sio = None
            return
        token = response.json()["token"]
        session = self.client.cookies.get("session")
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("message", self.on_message)
        started = time.perf_counter()
        try:
            self.sio.connect(self.host, transports=["websocket"], auth={"token": token},
                             headers={"Cookie": f"session={session}"}, wait_timeout=10)
        except socketio.exceptions.ConnectionError as error:
            TOTALS["errors"] += 1
            events.request.fire(request_type="SIO", name="connect", response_length=0,
                                response_time=(time.perf_counter() - started) * 1000,
                                exception=error, context={})
            self.sio = None
            return
        events.request.fire(request_type="SIO", name="connect", response_length=0,
                            response_time=(time.perf_counter() - started) * 1000, exception=None,
                            context={})
        TOTALS["connected"] += 1
        for channel in CHANNELS:
            started = time.perf_counter()
            answer = self.sio.call("subscribe", {"channel": channel}, timeout=10)
            ok = isinstance(answer, dict) and answer.get("ok")
            events.request.fire(request_type="SIO", name="subscribe", response_length=0,
                                response_time=(time.perf_counter() - started) * 1000,
                                exception=None if ok else RuntimeError(repr(answer)), context={})
            if ok:
                TOTALS["subscribed"] += 1

    def on_message(self, message):
        TOTALS["received"] += 1
        # python-socketio runs each handler in a thread (a greenlet here) of its own: when Locust
        # is behind, handlers still run after on_stop disconnected, and emit would raise.
        if not self.sio.connected:
            TOTALS["unanswered"] += 1
            return
        self.sio.emit("received", {"id": message["id"]})
        TOTALS["replied"] += 1
        channel, seq = message["channel"], message["seq"]
        seen = self.seen.setdefault(channel, set())
        if seq in seen:
            TOTALS["duplicates"] += 1
        else:
            seen.add(seq)
            last = self.last_seq.get(channel)
            if last is None or seq > last:
                if last is not None and seq > last + 1:
                    TOTALS["gaps"] += seq - last - 1
                self.last_seq[channel] = seq
            else:
                TOTALS["reorders"] += 1
        events.request.fire(request_type="SIO", name="message", response_length=0,
                            response_time=time.time() * 1000 - message["ts"], exception=None,
                            context={})

    @task
    def idle(self):
        pass

    def on_stop(self):
        if self.sio is not None:
            self.sio.disconnect()


@events.quitting.add_listener
def write_totals(environment, **_kwargs):
    path = os.environ.get("VOLLEY_PEERS_LOCUST_OUT")
    if path:
        with open(path, "w") as f:
            json.dump(TOTALS, f)
