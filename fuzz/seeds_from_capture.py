#!/usr/bin/env python3
"""Writes fuzz seeds from real captures: the JSON lines of `volley inspect --jsonl` or of a run's
`--log-frames` (frames.jsonl). FUZZING.md says how the committed `cap-*` seeds were captured.

    python3 fuzz/seeds_from_capture.py CAPTURE.jsonl... 

Records keep what volley decoded, not the bytes: frames are encoded again (client frames masked
with a fixed key), HTTP heads written again from their fields, polling bodies joined again from
their packets in the Engine.IO version of their request. Seeds are small and few per target;
existing `cap-*` seeds of the same name are overwritten, hand-written ones are left alone.
"""

import json
import os
import struct
import sys
from collections import OrderedDict

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])
OPCODES = {"continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}
MAX_FRAMES_PER_SEED = 8
MAX_SEEDS = 12


def payload_of(record):
    if "hex" in record:
        return bytes.fromhex(record["hex"])
    if "close_code" in record:
        return struct.pack(">H", record["close_code"]) + record.get("close_reason", "").encode()
    return record.get("text", "").encode()


def frame(record):
    payload = payload_of(record)
    masked = record.get("masked", record.get("dir") == "c2s")
    first = (0x80 if record.get("fin", True) else 0) | record.get("rsv", 0) << 4
    first |= OPCODES.get(record.get("opcode", "text"), record.get("opcode_value", 1))
    out = bytearray([first])
    mask_bit = 0x80 if masked else 0
    if len(payload) < 126:
        out.append(mask_bit | len(payload))
    elif len(payload) < 65536:
        out.append(mask_bit | 126)
        out += struct.pack(">H", len(payload))
    else:
        out.append(mask_bit | 127)
        out += struct.pack(">Q", len(payload))
    if masked:
        out += MASK
        payload = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes(out + payload)


def eio_version(target):
    return 3 if "EIO=3" in (target or "") else 4


def join_payload(packets, version):
    if version == 4:
        return "\x1e".join(packets).encode()
    # v3 counts UTF-16 code units.
    return "".join(f"{len(p.encode('utf-16-le')) // 2}:{p}" for p in packets).encode()


def head(record):
    if record["kind"] == "http_request":
        line = f"{record['method']} {record['target']} HTTP/1.1\r\n"
    else:
        line = f"HTTP/1.1 {record['status']} {record.get('reason', '')}\r\n"
    fields = "".join(f"{k}: {v}\r\n" for k, v in record.get("headers", {}).items())
    return (line + fields + "\r\n").encode()


def chunked(body, size=16):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i : i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


def main(paths):
    records = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            records += [json.loads(line) for line in f if line.strip()]

    seeds = {name: OrderedDict() for name in (
        "wsframe", "wire_decode", "http1_head", "http1_chunked", "engineio", "socketio",
        "pointer", "stamp")}

    def add(target, content):
        if content and len(seeds[target]) < MAX_SEEDS and content not in seeds[target].values():
            seeds[target][f"cap-{len(seeds[target]):02}"] = content

    # WebSocket frames, per connection and direction, a few frames at a time.
    streams = OrderedDict()
    engine = {}
    bodies = OrderedDict()
    last_target = {}
    for r in records:
        key = (r.get("conn"), r.get("dir"))
        if r["kind"] == "http_request":
            last_target[r.get("conn")] = r.get("target")
            engine[r.get("conn")] = eio_version(r.get("target")) if "EIO=" in r.get("target", "") else None
            add("http1_head", head(r))
        elif r["kind"] == "http_response":
            add("http1_head", head(r))
        elif r["kind"] == "frame":
            streams.setdefault(key, []).append(frame(r))
        elif r["kind"] == "packet":
            version = eio_version(last_target.get(r.get("conn")))
            bodies.setdefault((key, version), []).append(r.get("text", ""))
        text = r.get("text", "")
        if r["kind"] in ("frame", "packet") and text.startswith("4") and len(text) > 1:
            add("socketio", text[1:].encode())
        if "vly:" in text:
            add("stamp", text.encode())
            if text.lstrip("4").lstrip("2").startswith("["):
                add("pointer", b"/1/seq\n" + text.lstrip("4").lstrip("2").encode())
            elif text.startswith("{"):
                add("pointer", b"/_vly\n" + text.encode())
    for (conn, _), frames in streams.items():
        stream = b"".join(frames[:MAX_FRAMES_PER_SEED])
        add("wsframe", stream)
        mode = {None: 0, 3: 1, 4: 2}[engine.get(conn)]
        add("wire_decode", bytes([mode]) + stream)
    for ((_, _), version), packets in bodies.items():
        body = join_payload(packets[:6], version)
        add("engineio", body)
        add("wire_decode", bytes([0x40 | (1 if version == 3 else 2)]) + body)
        add("http1_chunked", chunked(body))

    for target, files in seeds.items():
        folder = os.path.join(CORPUS, target)
        os.makedirs(folder, exist_ok=True)
        for name, content in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(content)
        print(f"{target}: {len(files)} seeds")


if __name__ == "__main__":
    main(sys.argv[1:])
