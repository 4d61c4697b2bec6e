#!/usr/bin/env python3
"""Cold start and peak memory of the trailwatch-lambda binary, measured against a tiny
stand-in for the Lambda Runtime API (stdlib only).

Cold start: process start -> the first `GET /2018-06-01/runtime/invocation/next`, i.e.
everything the function does at init (config, rule compilation, SDK clients).

Peak memory: the process's VmHWM after it handled one subscription event built from
about 1 MiB of real CloudTrail records ($TRAILWATCH_CORPUS/bulk, default
../shared/corpus/bulk). SNS points at a closed
port, so the invocation ends in a publish error; decoding, matching and rendering, which
dominate memory, all happen before that.

usage: python3 bench/lambda_footprint.py [path/to/trailwatch-lambda] [--runs N]
(build it first: cargo build --release --features lambda --bin trailwatch-lambda)
RULES_DIR=dir measures loading the rules from dir (e.g. the output of
`trailwatch rules compile rules --output dir`) instead of the built-in ones.
"""

import base64
import glob
import gzip
import http.server
import json
import os
import statistics
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH_BYTES = 1024 * 1024


class RuntimeApi(http.server.BaseHTTPRequestHandler):
    """Serves at most one event, then holds further polls open."""

    event = None
    first_poll = None
    served = False
    done = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        cls = type(self)
        if cls.first_poll is None:
            cls.first_poll = time.perf_counter()
        if cls.event is None or cls.served:
            cls.done.set()
            time.sleep(30)
            return
        cls.served = True
        body = cls.event
        self.send_response(200)
        self.send_header("Lambda-Runtime-Aws-Request-Id", "bench-1")
        self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 60000))
        self.send_header("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:123456789012:function:trailwatch")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        self.send_response(202)
        self.send_header("Content-Length", "0")
        self.end_headers()


def start_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RuntimeApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def function_env(port):
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{port}",
        "AWS_LAMBDA_FUNCTION_NAME": "trailwatch",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "ALERT_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:trailwatch-alerts",
        "METRICS_MODE": "emf",
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:9",
        "AWS_MAX_ATTEMPTS": "1",
        "RUST_LOG": "error",
        # The rules as the deployed function loads them (a dir with rules.bundle.json or
        # YAML files); unset: the binary's built-in rules.
        **({"RULES_DIR": os.environ["RULES_DIR"]} if os.environ.get("RULES_DIR") else {}),
    }


def cold_start(binary, runs):
    """Process start -> the first poll's request line on a plain listening socket (no
    HTTP server in between: Python's threaded server added tens of ms of its own)."""
    import socket
    times = []
    for _ in range(runs):
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(10)
        start = time.perf_counter()
        proc = subprocess.Popen([binary], env=function_env(listener.getsockname()[1]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            conn, _ = listener.accept()
        except socket.timeout:
            proc.kill()
            _, stderr = proc.communicate()
            sys.exit(f"{binary} never polled the Runtime API (init failed?):\n"
                     f"{stderr.decode(errors='replace')[-2000:]}")
        request = b""
        while b"/runtime/invocation/next" not in request:
            chunk = conn.recv(4096)
            if not chunk:
                break
            request += chunk
        times.append((time.perf_counter() - start) * 1000)
        conn.close()
        listener.close()
        proc.kill()
        proc.wait()
    return times


def one_mib_event():
    corpus = os.environ.get("TRAILWATCH_CORPUS", os.path.join(ROOT, "..", "shared", "corpus"))
    files = sorted(glob.glob(os.path.join(corpus, "bulk", "*.jsonl.gz")))
    if not files:
        return None
    events, size = [], 0
    for path in files:
        with gzip.open(path, "rt") as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                if size + len(line) > BATCH_BYTES:
                    break
                events.append({"id": str(len(events)).zfill(56), "timestamp": 1700000000000, "message": line})
                size += len(line)
    data = {"messageType": "DATA_MESSAGE", "owner": "123456789012", "logGroup": "trail",
            "logStream": "s", "subscriptionFilters": ["trailwatch"], "logEvents": events}
    raw = json.dumps(data).encode()
    encoded = base64.b64encode(gzip.compress(raw)).decode()
    return json.dumps({"awslogs": {"data": encoded}}).encode(), len(events), len(raw)


def peak_memory(binary, event):
    RuntimeApi.event, RuntimeApi.first_poll, RuntimeApi.served = event, None, False
    RuntimeApi.done.clear()
    server = start_server()
    proc = subprocess.Popen([binary], env=function_env(server.server_address[1]),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    RuntimeApi.done.wait(60)
    with open(f"/proc/{proc.pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    proc.kill()
    proc.wait()
    server.shutdown()
    return status["VmHWM"].strip()


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = 20
    if "--runs" in sys.argv:
        runs = int(sys.argv[sys.argv.index("--runs") + 1])
        args = [a for a in args if a != str(runs)]
    binary = args[0] if args else os.path.join(ROOT, "target", "release", "trailwatch-lambda")
    if not os.path.exists(binary):
        sys.exit(f"{binary} not found: cargo build --release --features lambda --bin trailwatch-lambda")
    times = cold_start(binary, runs)
    print(f"binary: {binary} ({os.path.getsize(binary) / 1e6:.2f} MB)")
    print(f"cold start (process start -> first Runtime API poll), {runs} runs: "
          f"median {statistics.median(times):.2f} ms, min {min(times):.2f} ms, max {max(times):.2f} ms")
    built = one_mib_event()
    if built is None:
        print("peak memory: SKIPPED (no corpus: set TRAILWATCH_CORPUS or put it at ../shared/corpus)")
        return
    event, count, raw = built
    print(f"peak memory (VmHWM) after one {raw / 1048576:.2f} MiB batch of {count} real events: "
          f"{peak_memory(binary, event)}")


if __name__ == "__main__":
    main()
