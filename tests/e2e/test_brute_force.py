"""Failed logins are rate limited per client address; right credentials never are.

The guessing client connects from its own loopback address (127.0.0.2), so the other modules'
deliberate 401s on the shared stack (from 127.0.0.1) neither feed nor drain its budget.
"""

from __future__ import annotations

import base64
import http.client
import threading
import time
from collections import Counter

import pytest

from components.specs.nginx import AUTH_FAILURE_BURST, AUTH_FAILURE_ZONE

pytestmark = pytest.mark.e2e

GUESSER = "127.0.0.2"
CLEAN_CLIENT = "127.0.0.4"  # the same load from an address with no failed login
ATTEMPTS = 60
# Cheap for MLflow: no database, no S3.
CHEAP = "/version"
LEGIT_RATE = 200  # requests per second, the rate a busy client may reach
LEGIT_SECONDS = 2.0
LEGIT_CONNECTIONS = 8


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def connect(stack, source: str) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=10, source_address=(source, 0))


def status(conn: http.client.HTTPConnection, path: str, authorization: str) -> int:
    conn.request("GET", path, headers={"Authorization": authorization})
    response = conn.getresponse()
    response.read()
    return response.status


def guess(stack, attempts: int, tag: str) -> list[int]:
    """Wrong passwords, one after the other on a keep-alive connection."""
    user = stack.credentials[0]
    conn = connect(stack, GUESSER)
    try:
        return [status(conn, CHEAP, basic(user, f"guess-{tag}-{i}")) for i in range(attempts)]
    finally:
        conn.close()


def legit_load(stack, source: str) -> tuple[Counter[int], float]:
    """LEGIT_RATE requests/s for LEGIT_SECONDS with the right credentials, paced, over a few connections."""
    authorization = basic(*stack.credentials)
    total = int(LEGIT_RATE * LEGIT_SECONDS)
    codes: Counter[int] = Counter()
    lock = threading.Lock()
    start = time.monotonic()

    def worker(index: int) -> None:
        conn = connect(stack, source)
        try:
            for n in range(index, total, LEGIT_CONNECTIONS):
                delay = start + n / LEGIT_RATE - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                code = status(conn, CHEAP, authorization)
                with lock:
                    codes[code] += 1
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(LEGIT_CONNECTIONS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return codes, total / (time.monotonic() - start)


def test_password_guessing_gets_429_and_the_right_password_keeps_working(stack):
    started = time.monotonic()
    codes = guess(stack, ATTEMPTS, "first")
    elapsed = time.monotonic() - started
    assert set(codes) <= {401, 429}, codes
    # The burst (plus the one request the rate allows) is answered as before, then 429: at
    # 10 r/m at most a couple more slip through while the loop runs.
    refilled = int(elapsed / 6) + 1
    assert codes[: AUTH_FAILURE_BURST + 1] == [401] * (AUTH_FAILURE_BURST + 1), codes
    throttled = codes.count(429)
    assert throttled >= ATTEMPTS - (AUTH_FAILURE_BURST + 1) - refilled, codes
    print(f"\nguessing: {ATTEMPTS} attempts in {elapsed:.2f}s, {codes.count(401)} x 401, {throttled} x 429")

    # What this machine serves at LEGIT_RATE from an address that never guessed: the yardstick
    # for the throttled one (a limiter that delayed it would cut it to 10/min, far below).
    clean, clean_rate = legit_load(stack, CLEAN_CLIENT)
    assert clean == Counter({200: int(LEGIT_RATE * LEGIT_SECONDS)}), clean

    # From the throttled address itself, while it keeps guessing: the right credentials at
    # LEGIT_RATE are never limited.
    guesses: list[int] = []
    background = threading.Thread(target=lambda: guesses.extend(guess(stack, 20, "during")))
    background.start()
    legit, rate = legit_load(stack, GUESSER)
    background.join(timeout=60)
    print(
        f"legit client: {sum(legit.values())} requests at {rate:.0f}/s ({clean_rate:.0f}/s unthrottled): {dict(legit)}"
    )
    print(f"guesses meanwhile: {Counter(guesses)}")
    assert legit == Counter({200: int(LEGIT_RATE * LEGIT_SECONDS)}), legit
    assert rate >= 0.8 * min(clean_rate, LEGIT_RATE), (rate, clean_rate)
    assert len(guesses) == 20 and guesses.count(429) >= 18, guesses
    # Another address's budget is untouched by this one's guessing.
    conn = connect(stack, "127.0.0.3")
    try:
        assert status(conn, CHEAP, basic(stack.credentials[0], "one-typo")) == 401
    finally:
        conn.close()

    # nginx saw the same: the 429s in its access log, a warning per limited request, and
    # neither the password nor a guess anywhere in its log.
    logged = Counter(e["status"] for e in stack.access_log() if e["addr"] == GUESSER and e["path"] == CHEAP)
    assert logged[429] == throttled + guesses.count(429), logged
    log = stack.nginx.log_text()
    warnings = [line for line in log.splitlines() if "[warn]" in line and "limiting requests" in line]
    assert warnings and all(f'zone "{AUTH_FAILURE_ZONE}"' in line for line in warnings), warnings
    assert stack.password not in log and "guess-" not in log
