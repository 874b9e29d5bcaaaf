#!/usr/bin/env python3
"""Channel latencies against a running `switchboard serve` (release build), standard library only.

    python3 evals/baselines/channels.py --binary target/release/switchboard [--n 40]

Starts the server on a free port with a temporary data dir and the WhatsApp channel pointed at
a local stand-in for the Graph API, waits until it is ready, then measures:
  - webhook acknowledgement: time for `POST /webhooks/whatsapp` (signed, one text message) to
    return 200, while the worker answers the earlier ones in the background;
  - webhook to reply: time from the POST until the reply reaches the stand-in;
  - stream: time from `POST .../messages` to the first `token` event and to the `turn` event
    on `GET .../stream`, for a knowledge question (generation on).
Prints one JSON object on the last line.
"""

import argparse
import hashlib
import hmac
import http.client
import http.server
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time

APP_SECRET = "bench-secret"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StandIn(http.server.BaseHTTPRequestHandler):
    arrivals = {}

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        StandIn.arrivals.setdefault(body.get("to"), time.perf_counter())
        out = json.dumps({"messaging_product": "whatsapp", "messages": [{"id": "wamid.bench"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", default="target/release/switchboard")
    parser.add_argument("--n", type=int, default=40)
    args = parser.parse_args()

    graph_port = free_port()
    graph = http.server.ThreadingHTTPServer(("127.0.0.1", graph_port), StandIn)
    threading.Thread(target=graph.serve_forever, daemon=True).start()

    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="switchboard-bench-")
    env = dict(os.environ)
    env.update({
        "SWITCHBOARD_WHATSAPP__APP_SECRET": APP_SECRET,
        "SWITCHBOARD_WHATSAPP__ACCESS_TOKEN": "bench-token",
        # figment reads a bare number as an integer: quote it to keep it a string.
        "SWITCHBOARD_WHATSAPP__PHONE_NUMBER_ID": "\"106540352242922\"",
        "SWITCHBOARD_WHATSAPP__API_BASE_URL": f"http://127.0.0.1:{graph_port}",
        "RUST_LOG": "info",
    })
    log_path = os.path.join(data_dir, "server.log")
    log = open(log_path, "w")
    server = subprocess.Popen(
        [args.binary, "serve", "--addr", f"127.0.0.1:{port}", "--data-dir", data_dir],
        env=env, stdout=log, stderr=log,
    )
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        deadline = time.time() + 900
        while True:
            try:
                conn.request("GET", "/readyz")
                response = conn.getresponse()
                response.read()
                if response.status == 200:
                    break
            except OSError:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            if time.time() > deadline:
                raise SystemExit(f"the server did not become ready; see {log_path}")
            time.sleep(0.5)

        # Webhook acknowledgement and webhook-to-reply.
        acks, sent_at = [], {}
        for i in range(args.n):
            sender = str(15550000000 + i)
            body = json.dumps({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
                "field": "messages", "value": {"messaging_product": "whatsapp", "messages": [{
                    "from": sender, "id": f"wamid.bench.{i}", "timestamp": "1", "type": "text",
                    "text": {"body": "What is the late fee?" if i % 2 else "How do I get a new SIM card?"}}]}}]}]}).encode()
            signature = "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
            started = time.perf_counter()
            conn.request("POST", "/webhooks/whatsapp", body,
                         {"Content-Type": "application/json", "X-Hub-Signature-256": signature})
            response = conn.getresponse()
            response.read()
            acks.append((time.perf_counter() - started) * 1000)
            sent_at[sender] = started
            assert response.status == 200, response.status
        deadline = time.time() + 1800
        while len(StandIn.arrivals) < args.n and time.time() < deadline:
            time.sleep(0.2)
        first_replies = sorted((StandIn.arrivals[s] - t) * 1000 for s, t in sent_at.items() if s in StandIn.arrivals)

        # Stream: first token and turn for knowledge questions (new connections: idle ones are
        # closed by the server's keep-alive timeout while a turn is generated).
        ttft, turn_ms = [], []
        for question in ["How do I get a new SIM card?", "Is roaming free in Europe?", "How does autopay work?"] * 3:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            conn.request("POST", "/api/v1/conversations", "{}", {"Content-Type": "application/json"})
            response = conn.getresponse()
            cid = json.loads(response.read())["id"]
            stream = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
            stream.request("GET", f"/api/v1/conversations/{cid}/stream")
            sse = stream.getresponse()
            while b"event: ready" not in sse.fp.readline():
                pass
            started = time.perf_counter()
            poster = threading.Thread(target=lambda: post_message(port, cid, question))
            poster.start()
            first = None
            while True:
                line = sse.fp.readline()
                if line.startswith(b"event: token") and first is None:
                    first = (time.perf_counter() - started) * 1000
                if line.startswith(b"event: turn"):
                    turn_ms.append((time.perf_counter() - started) * 1000)
                    break
            if first is not None:
                ttft.append(first)
            poster.join()
            stream.close()

        result = {
            "webhook_ack_ms_p50": round(statistics.median(acks), 2),
            "webhook_ack_ms_p95": round(percentile(acks, 0.95), 2),
            "webhook_ack_ms_max": round(max(acks), 2),
            "n_webhooks": args.n,
            "webhook_to_reply_ms_p50": round(statistics.median(first_replies), 1) if first_replies else None,
            "n_replies": len(first_replies),
            "replies_per_s": round(len(first_replies) / (max(first_replies) / 1000), 2) if first_replies else None,
            "stream_first_token_ms_p50": round(statistics.median(ttft), 1) if ttft else None,
            "stream_turn_ms_p50": round(statistics.median(turn_ms), 1),
            "n_stream_turns": len(turn_ms),
        }
        print(json.dumps(result))
    finally:
        server.terminate()
        server.wait()
        graph.shutdown()


def post_message(port, cid, text):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", f"/api/v1/conversations/{cid}/messages", json.dumps({"text": text}),
                 {"Content-Type": "application/json"})
    conn.getresponse().read()


if __name__ == "__main__":
    main()
