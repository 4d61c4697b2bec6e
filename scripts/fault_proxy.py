#!/usr/bin/env python3
"""Fault-injecting HTTP proxy in front of moto, for trailwatch's no-loss/no-duplicate tests.

The Rust AWS SDK sends every call to ``AWS_ENDPOINT_URL``; pointing that at this proxy
puts it between the Lambda and moto. Calls to the services in ``--fault-services``
(default ``sns,dynamodb``) fail at random with probability ``--rate``; everything else
(SQS, which the test reads back, CloudWatch, STS, ...) is forwarded untouched.

Usage::

    python3 scripts/fault_proxy.py --upstream http://127.0.0.1:MOTO --rate 0.3 --seed 7 \
        [--port 0] [--fault-services sns,dynamodb] [--stats-file PATH] [--verbose]

It listens on 127.0.0.1 (``--port 0``: any free port), prints one line ``listening <port>``
to stdout, and serves until SIGTERM/SIGINT, then writes its stats as JSON to
``--stats-file`` (if given) and exits 0. ``GET /__stats`` returns the same JSON live.

Calls are told apart by the SigV4 credential scope (``.../<region>/<service>/aws4_request``;
``monitoring`` is CloudWatch), else by ``X-Amz-Target`` or the query ``Version``; the
operation is the ``X-Amz-Target`` suffix or the form/query ``Action``.

Fault kinds, one drawn uniformly among those that apply (seeded, so a serial run is
reproducible):

* ``http500``  500 InternalError / InternalServerError in the service's error format;
* ``throttle`` 400 Throttling (query) / ThrottlingException (JSON);
* ``http503``  503 ServiceUnavailable;
* ``reset``    the request is read whole, then the connection is reset (SO_LINGER 0)
  with no response at all;
* ``partial``  SNS ``PublishBatch`` only: some entries are reported in ``Failed``
  (InternalError, SenderFault false). Only the other entries are forwarded (form fields
  renumbered; moto does not check SigV4 signatures) and the failed ones are spliced into
  moto's response; if every entry fails nothing is forwarded.

The rule: every fault is injected BEFORE moto applies the request, never "applied but
reported failed". A caller that retries a failed call therefore never duplicates it. The
other case (a lost response after the publish happened) cannot be made exactly-once with
a standard SNS topic: the client cannot tell it from a real failure and a standard topic
has no deduplication, so it lies outside the guarantee these tests check.
"""
from __future__ import annotations

import argparse
import http.client
import http.server
import json
import random
import re
import signal
import socket
import struct
import sys
import threading
import urllib.parse
import uuid
from collections import defaultdict
from xml.sax.saxutils import escape

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade", "proxy-connection"}
SCOPE_RE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/,\s]+/([^/,\s]+)/aws4_request")
SERVICES = {"sns": "sns", "sqs": "sqs", "dynamodb": "dynamodb", "monitoring": "cloudwatch"}
TARGET_PREFIXES = {"DynamoDB_20120810": "dynamodb", "AmazonSQS": "sqs",
                   "GraniteServiceVersion20100801": "cloudwatch"}
QUERY_VERSIONS = {"2010-03-31": "sns", "2012-11-05": "sqs", "2010-08-01": "cloudwatch"}
ENTRY_RE = re.compile(r"PublishBatchRequestEntries\.member\.(\d+)\.(.+)")
SNS_NS = "http://sns.amazonaws.com/doc/2010-03-31/"
DYNAMO_NS = "com.amazonaws.dynamodb.v20120810#"
# kind -> (status, query Type, query Code, JSON __type)
ERRORS = {"http500": (500, "Receiver", "InternalError", "InternalServerError"),
          "throttle": (400, "Sender", "Throttling", "ThrottlingException"),
          "http503": (503, "Receiver", "ServiceUnavailable", "ServiceUnavailable")}
KINDS = ("http500", "throttle", "http503", "reset", "partial")


class Call:
    """What one request is: service, operation, wire protocol, and its form fields."""

    def __init__(self, method: str, path: str, headers, body: bytes):
        query = urllib.parse.urlsplit(path).query
        ctype = headers.get("Content-Type", "")
        self.form = None
        if method == "POST" and "x-www-form-urlencoded" in ctype:
            self.form = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        params = dict(urllib.parse.parse_qsl(query, keep_blank_values=True))
        params.update(self.form or [])
        target = headers.get("X-Amz-Target", "")
        scope = SCOPE_RE.search(headers.get("Authorization", "") or urllib.parse.unquote(query))
        if scope:
            self.service = SERVICES.get(scope.group(1), "other")
        elif target:
            self.service = TARGET_PREFIXES.get(target.split(".")[0], "other")
        else:
            self.service = QUERY_VERSIONS.get(params.get("Version", ""), "other")
        op = re.search(r"/operation/([A-Za-z0-9]+)", path)
        self.operation = (target.rsplit(".", 1)[-1] if target else params.get("Action")
                          or (op.group(1) if op else "unknown"))
        if headers.get("smithy-protocol", "") == "rpc-v2-cbor":
            self.protocol = "cbor"
        elif target or ctype.startswith("application/x-amz-json"):
            self.protocol = "json"
        else:
            self.protocol = "query"

    def batch_ids(self) -> dict[int, str]:
        """SNS PublishBatch entry number -> entry Id (empty unless a query PublishBatch)."""
        if self.service != "sns" or self.operation != "PublishBatch" or self.form is None:
            return {}
        ids = {}
        for key, value in self.form:
            m = ENTRY_RE.fullmatch(key)
            if m and m.group(2) == "Id":
                ids[int(m.group(1))] = value
        return ids


class Proxy:
    """Configuration, the seeded RNG and the stats, shared by all handler threads."""

    def __init__(self, upstream: str, rate: float, seed: int, fault_services: set[str]):
        u = urllib.parse.urlsplit(upstream)
        self.host, self.port = u.hostname or "127.0.0.1", u.port or 80
        self.netloc, self.base = u.netloc, u.path.rstrip("/")
        self.rate, self.fault_services = rate, fault_services
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.total = self.connections = self.upstream_errors = 0
        self.partial_failed = self.partial_forwarded = 0
        self.services = defaultdict(lambda: {"total": 0, "faulted": 0})
        self.operations = defaultdict(lambda: {"total": 0, "faulted": 0})
        self.faults = dict.fromkeys(KINDS, 0)

    def decide(self, call: Call) -> tuple[str | None, set[int]]:
        """Count the call and draw its fault (None: forward as is) and failed batch entries."""
        ids = call.batch_ids()
        kinds = ["reset"] if call.protocol == "cbor" else ["http500", "throttle", "http503", "reset"]
        if ids:
            kinds.append("partial")
        with self.lock:
            self.total += 1
            kind, failed = None, set()
            if call.service in self.fault_services and self.rng.random() < self.rate:
                kind = self.rng.choice(kinds)
                if kind == "partial":
                    n = len(ids)
                    k = n if n == 1 else self.rng.randint(1, n - 1)
                    failed = set(self.rng.sample(sorted(ids), k))
                    self.partial_failed += k
                    self.partial_forwarded += n - k
                self.faults[kind] += 1
            for rec in (self.services[call.service], self.operations[f"{call.service}.{call.operation}"]):
                rec["total"] += 1
                rec["faulted"] += kind is not None
        return kind, failed

    def stats(self) -> dict:
        with self.lock:
            eligible = [v for k, v in self.services.items() if k in self.fault_services]
            total, faulted = sum(v["total"] for v in eligible), sum(v["faulted"] for v in eligible)
            return {"total": self.total, "connections": self.connections,
                    "fault_services": sorted(self.fault_services),
                    "rate": self.rate, "eligible_total": total, "eligible_faulted": faulted,
                    "faulted_share": faulted / total if total else 0.0,
                    "services": {k: dict(v) for k, v in sorted(self.services.items())},
                    "faults": dict(self.faults),
                    "partial_entries_failed": self.partial_failed,
                    "partial_entries_forwarded": self.partial_forwarded,
                    "upstream_errors": self.upstream_errors,
                    "operations": {k: dict(v) for k, v in sorted(self.operations.items())}}


def failed_members(ids: list[str]) -> str:
    return "".join(f"<member><Id>{escape(i)}</Id><Code>InternalError</Code><SenderFault>false"
                   f"</SenderFault><Message>injected partial failure</Message></member>" for i in ids)


def splice_failed(xml: str, ids: list[str]) -> str:
    """Add failed entries to a PublishBatchResponse (moto answers with ``<Failed/>``)."""
    members = failed_members(ids)
    for empty in ("<Failed/>", "<Failed />", "<Failed></Failed>"):
        if empty in xml:
            return xml.replace(empty, f"<Failed>{members}</Failed>", 1)
    if "</Failed>" in xml:
        return xml.replace("</Failed>", members + "</Failed>", 1)
    for anchor in ("</Successful>", "<Successful/>", "<Successful />"):
        if anchor in xml:
            return xml.replace(anchor, f"{anchor}<Failed>{members}</Failed>", 1)
    return xml.replace("<PublishBatchResult>", f"<PublishBatchResult><Failed>{members}</Failed>", 1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault-proxy"
    proxy: Proxy
    verbose = False

    def log_message(self, format, *args):  # noqa: A002 - BaseHTTPRequestHandler's signature
        if self.verbose:
            sys.stderr.write("fault_proxy: %s\n" % (format % args))

    def setup(self):
        super().setup()
        with self.proxy.lock:
            self.proxy.connections += 1  # fewer connections than requests: keep-alive works

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def reply(self, status: int, body: bytes, headers: list[tuple[str, str]], reason=None):
        self.send_response_only(status, reason)
        for name, value in headers:
            self.send_header(name, value)
        if not any(n.lower() == "date" for n, _ in headers):
            self.send_header("Date", self.date_time_string())
        has_length = any(n.lower() == "content-length" for n, _ in headers)
        if not (status < 200 or status in (204, 304) or has_length):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        self.log_request(status, len(body))

    def reply_error(self, call: Call, kind: str):
        status, etype, code, jtype = ERRORS[kind]
        rid = str(uuid.uuid4())
        if call.protocol == "json":
            prefix = DYNAMO_NS if call.service == "dynamodb" else ""
            body = json.dumps({"__type": prefix + jtype, "message": "injected"}).encode()
            ctype = "application/x-amz-json-1.0"
        else:
            body = (f'<ErrorResponse xmlns="{SNS_NS}"><Error><Type>{etype}</Type><Code>{code}</Code>'
                    f"<Message>injected</Message></Error><RequestId>{rid}</RequestId>"
                    "</ErrorResponse>").encode()
            ctype = "text/xml"
        self.reply(status, body, [("Content-Type", ctype), ("x-amzn-RequestId", rid)])

    def reset(self):
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()  # drops makefile()'s reference, so close() really closes (RST)
        self.connection.close()
        self.log_message('"%s" reset', self.requestline)

    def forward(self, path: str, body: bytes):
        """Send the request to moto; return (status, reason, headers, body) or None if unreachable."""
        headers = {}
        dropped = HOP_BY_HOP | {"host", "content-length", "expect"}
        dropped |= {h.strip().lower() for h in self.headers.get("Connection", "").split(",")}
        for name, value in self.headers.items():
            if name.lower() not in dropped:
                headers[name] = value
        headers["Host"] = self.proxy.netloc
        if body or self.command in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(self.proxy.host, self.proxy.port, timeout=120)
        try:
            conn.request(self.command, self.proxy.base + path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        except (OSError, http.client.HTTPException) as e:
            with self.proxy.lock:
                self.proxy.upstream_errors += 1
            self.log_message("upstream error: %r", e)
            return None
        finally:
            conn.close()

    def handle_any(self):
        body = self.read_body()
        path = self.path
        if path.startswith(("http://", "https://")):
            u = urllib.parse.urlsplit(path)
            path = u.path + (f"?{u.query}" if u.query else "")
        if self.command == "GET" and urllib.parse.urlsplit(path).path == "/__stats":
            data = json.dumps(self.proxy.stats(), indent=1).encode()
            return self.reply(200, data, [("Content-Type", "application/json")])
        call = Call(self.command, path, self.headers, body)
        kind, failed = self.proxy.decide(call)
        if kind == "reset":
            return self.reset()
        if kind in ERRORS:
            return self.reply_error(call, kind)
        ids = call.batch_ids() if kind == "partial" else {}
        failed_ids = [ids[n] for n in sorted(failed)]
        if ids and len(failed) == len(ids):
            rid = str(uuid.uuid4())
            xml = (f'<PublishBatchResponse xmlns="{SNS_NS}"><PublishBatchResult><Successful/>'
                   f"<Failed>{failed_members(failed_ids)}</Failed></PublishBatchResult>"
                   f"<ResponseMetadata><RequestId>{rid}</RequestId></ResponseMetadata>"
                   "</PublishBatchResponse>")
            return self.reply(200, xml.encode(), [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid)])
        if ids:
            keep = {n: i for i, n in enumerate(sorted(set(ids) - failed), 1)}
            fields = []
            for key, value in call.form:
                m = ENTRY_RE.fullmatch(key)
                if not m:
                    fields.append((key, value))
                elif int(m.group(1)) in keep:
                    n = keep[int(m.group(1))]
                    fields.append((f"PublishBatchRequestEntries.member.{n}.{m.group(2)}", value))
            body = urllib.parse.urlencode(fields).encode()
        result = self.forward(path, body)
        if result is None:
            return self.reply(502, b"fault_proxy: upstream unreachable\n", [("Content-Type", "text/plain")])
        status, reason, headers, data = result
        if ids and status == 200:
            data = splice_failed(data.decode("utf-8"), failed_ids).encode("utf-8")
        keep_headers = [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP | {"content-length"}]
        if self.command == "HEAD":
            keep_headers += [(n, v) for n, v in headers if n.lower() == "content-length"]
        self.reply(status, data, keep_headers, reason)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):  # a client going away is normal
            sys.stderr.write(f"fault_proxy: error serving {client_address}: {exc!r}\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="moto's base URL, e.g. http://127.0.0.1:5000")
    ap.add_argument("--rate", type=float, default=0.3, help="fault probability per eligible call")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    ap.add_argument("--fault-services", default="sns,dynamodb",
                    help="comma-separated services to fault (sns, dynamodb, sqs, cloudwatch, other)")
    ap.add_argument("--stats-file", help="write the stats JSON here on exit")
    ap.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = ap.parse_args()

    Handler.proxy = Proxy(args.upstream, args.rate, args.seed,
                          {s.strip() for s in args.fault_services.split(",") if s.strip()})
    Handler.verbose = args.verbose
    server = Server(("127.0.0.1", args.port), Handler)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, daemon=True)
    serving.start()
    print(f"listening {server.server_address[1]}", flush=True)
    while not stop.wait(0.5):
        pass
    server.shutdown()
    server.server_close()
    if args.stats_file:
        with open(args.stats_file, "w", encoding="utf-8") as f:
            json.dump(Handler.proxy.stats(), f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
