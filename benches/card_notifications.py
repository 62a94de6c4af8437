"""Card notifications applied per second (driven by benches/card_notifications.sh).

Places ORDERS one-coupon orders paid by card, has the provider's stand-in mark each paid
without notifying, then posts every `checkout.session.completed` notification to rinnovo,
signed with Stripe's scheme, from CONNECTIONS threads at once (kept-alive connections):
each fulfils its order (coupons, emails, invoice). Then the same notifications again,
which must change nothing. Prints both rates with latencies, and checks the invariants.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import hmac
import http.client
import json
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))
import http_json  # noqa: E402


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p * (len(values) - 1))))]


class Poster:
    """One kept-alive connection per thread to rinnovo."""

    def __init__(self, base: str, secret: str) -> None:
        parsed = urllib.parse.urlparse(base)
        self.host, self.port = parsed.hostname, parsed.port
        self.secret = secret.encode()
        self.local = threading.local()

    def post(self, body: bytes) -> tuple[int, float]:
        connection = getattr(self.local, "connection", None)
        if connection is None:
            connection = self.local.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        stamp = int(time.time())
        signature = hmac.new(self.secret, f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        started = time.perf_counter()
        connection.request("POST", "/api/v1/card/notifications", body=body, headers={
            "Content-Type": "application/json", "Stripe-Signature": f"t={stamp},v1={signature}"})
        response = connection.getresponse()
        response.read()
        return response.status, time.perf_counter() - started


def run_round(poster: Poster, bodies: list[bytes], connections: int) -> tuple[float, list[float], int]:
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=connections) as pool:
        results = list(pool.map(poster.post, bodies))
    elapsed = time.perf_counter() - started
    failures = sum(1 for status, _ in results if status != 200)
    return elapsed, [latency for _, latency in results], failures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--provider", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--tokens", required=True, type=Path)
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    tokens = args.tokens.read_text().split()

    def place(n: int) -> str:
        answer = http_json.request(
            f"{args.base}/api/v1/orders", "POST",
            {"lines": [{"product": "RIN-FIRMA", "quantity": 1}], "payment_method": "card"},
            token=tokens[n % len(tokens)], headers={"Idempotency-Key": str(uuid.uuid4())}, timeout=60)
        assert answer.status == 201, answer.text()
        return answer.body["card"]["checkout_url"].rsplit("/", 1)[1]

    print(f"==> placing {args.orders} card orders", file=sys.stderr, flush=True)
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        sessions = list(pool.map(place, range(args.orders)))

    def pay(session: str) -> bytes:
        answer = http_json.request(f"{args.provider}/_control/sessions/{session}/pay", "POST",
                                   {"notify": False}, timeout=60)
        assert answer.status == 200, answer.text()
        return json.dumps(answer.body["event"], separators=(",", ":")).encode()

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        bodies = list(pool.map(pay, sessions))

    poster = Poster(args.base, args.secret)
    print(f"==> {len(bodies)} notifications, {args.connections} connections", file=sys.stderr, flush=True)
    first, first_latencies, first_failures = run_round(poster, bodies, args.connections)
    again, again_latencies, again_failures = run_round(poster, bodies, args.connections)

    def q(sql: str) -> str:
        return subprocess.run(["psql", "-Atq", args.db, "-c", sql], check=True,
                              capture_output=True, text=True).stdout.strip()

    fulfilled = q("SELECT count(*) FROM orders WHERE payment_method = 'card' AND status = 'fulfilled'")
    coupons = q("SELECT count(*) FROM coupons")
    invoices = q("SELECT count(*) FROM invoices WHERE kind = 'TD01'")
    events = q("SELECT count(*) FROM card_events")
    gaps = q("SELECT count(*) = count(DISTINCT invoice_seq) AND count(*) = max(invoice_seq) "
             "FROM orders WHERE invoice_seq IS NOT NULL")
    n = len(bodies)
    print()
    print(f"Card notifications: {n} one-coupon orders paid by card, {args.connections} connections")
    print(f"applied (fulfil: coupons, emails, invoice): {n / first:.0f} notifications/s, "
          f"p50 {percentile(first_latencies, 0.5) * 1000:.0f} ms, p99 {percentile(first_latencies, 0.99) * 1000:.0f} ms, "
          f"failures {first_failures}")
    print(f"delivered again (already applied): {n / again:.0f} notifications/s, "
          f"p50 {percentile(again_latencies, 0.5) * 1000:.0f} ms, p99 {percentile(again_latencies, 0.99) * 1000:.0f} ms, "
          f"failures {again_failures}")
    ok = fulfilled == str(n) and coupons == str(n) and invoices == str(n) and events == str(n) and gaps == "t"
    print(f"invariants: {fulfilled} fulfilled, {coupons} coupons, {invoices} invoices, {events} events "
          f"recorded, invoice numbers without gaps: {gaps}: {'hold' if ok else 'BROKEN'}")
    print(f"mean latency {statistics.mean(first_latencies) * 1000:.1f} ms")
    if not ok or first_failures or again_failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
