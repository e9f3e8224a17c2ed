#!/usr/bin/env python3
"""recorder.py - a local HTTP endpoint that records the requests it gets.

The purge tests point the CDN backends' base URLs at this server and
check every request byte for byte: the request line, each header line as
it arrived and the body. It answers from a script of canned responses
(status, headers, body, an optional delay, or closing the connection
without an answer), then with a default response (200 {"ok":true}).

Paths under /__recorder/ control it and are not recorded:
  POST /__recorder/script    append responses: a JSON array of
                             {"status":503,"headers":[["Retry-After","1"]],
                              "body":"...","delay_ms":0,"close":false}
  POST /__recorder/default   set the response used when the script is empty
  POST /__recorder/reset     forget requests and script
  GET  /__recorder/requests?wait=N&timeout_ms=T
                             wait until N requests were recorded (or T ms
                             passed), then return {"requests":[{"raw":...}]}

Usage: recorder.py --port-file FILE [--port N]
Only the Python standard library is used. The server listens on 127.0.0.1.
"""
import argparse
import json
import os
import socket
import socketserver
import sys
import threading
import time

REASONS = {200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
           400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 408: "Request Timeout", 413: "Payload Too Large",
           429: "Too Many Requests", 500: "Internal Server Error",
           502: "Bad Gateway", 503: "Service Unavailable",
           504: "Gateway Timeout"}


class State:
    def __init__(self):
        self.lock = threading.Condition()
        self.requests = []
        self.script = []
        self.default = {"status": 200, "body": '{"ok":true}',
                        "headers": [["Content-Type", "application/json"]]}


STATE = State()


def read_request(rfile):
    """Returns (raw bytes, method, target, body) or None at end of stream."""
    head = b""
    while True:
        line = rfile.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n") and not head:
            continue  # tolerate stray blank lines between requests
        head += line
        if line in (b"\r\n", b"\n"):
            break
    lines = head.split(b"\r\n")
    method, target, _ = lines[0].decode("latin-1").split(" ", 2)
    length = 0
    for h in lines[1:]:
        name, _, value = h.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = rfile.read(length) if length else b""
    return head + body, method, target, body


class Handler(socketserver.StreamRequestHandler):
    def respond(self, r):
        if r.get("delay_ms"):
            time.sleep(r["delay_ms"] / 1000.0)
        if r.get("close"):
            return False
        status = int(r.get("status", 200))
        body = r.get("body", "").encode("latin-1")
        out = "HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Status"))
        for name, value in r.get("headers", []):
            out += "%s: %s\r\n" % (name, value)
        out += "Content-Length: %d\r\n\r\n" % len(body)
        self.wfile.write(out.encode("latin-1") + body)
        self.wfile.flush()
        return True

    def control(self, method, target, body):
        path, _, query = target.partition("?")
        args = dict(p.partition("=")[::2] for p in query.split("&") if p)
        with STATE.lock:
            if path == "/__recorder/script":
                STATE.script.extend(json.loads(body or b"[]"))
            elif path == "/__recorder/default":
                STATE.default = json.loads(body)
            elif path == "/__recorder/reset":
                STATE.requests = []
                STATE.script = []
            elif path == "/__recorder/requests":
                want = int(args.get("wait", "0"))
                deadline = time.time() + int(args.get("timeout_ms", "0")) / 1e3
                while len(STATE.requests) < want:
                    left = deadline - time.time()
                    if left <= 0:
                        break
                    STATE.lock.wait(left)
                reqs = [{"raw": r} for r in STATE.requests]
                return {"status": 200, "body": json.dumps({"requests": reqs}),
                        "headers": [["Content-Type", "application/json"]]}
            else:
                return {"status": 404, "body": "unknown control path"}
        return {"status": 204}

    def handle(self):
        while True:
            try:
                got = read_request(self.rfile)
            except (ConnectionError, ValueError):
                return
            if got is None:
                return
            raw, method, target, body = got
            if target.startswith("/__recorder/"):
                r = self.control(method, target, body)
            else:
                with STATE.lock:
                    STATE.requests.append(raw.decode("latin-1"))
                    r = STATE.script.pop(0) if STATE.script else STATE.default
                    STATE.lock.notify_all()
            try:
                if not self.respond(r):
                    return
            except (ConnectionError, BrokenPipeError):
                return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
