"""Which replica is slow, seen from outside the code: per-endpoint series in
the metrics file (requests, errors, latency histogram), the endpoints in
the admin ``/status``, and one line per endpoint in ``python -m iokernel
top``. Three real redis-servers, the third behind a proxy that adds 30 ms."""

from __future__ import annotations

import io
import json
import os
from typing import Any

from iokernel import _cli, _native, admin
from iokernel._top import parse_labels
from tests.faults.delay import DelayProxyProcess
from tests.integration.balance_util import Load, addr, client, redis_trio, requests, wait_for


def _endpoint_series(service: str) -> dict[str, dict[str, Any]]:
    _, _, rows = _native.read_metrics(None)
    out: dict[str, dict[str, Any]] = {}
    for r in rows:
        lab = parse_labels(r["labels"])
        if r["name"].startswith("iokernel_endpoint_") and lab.get("service") == service:
            out.setdefault(lab["address"], {})[r["name"]] = r
    return out


def test_a_slow_replica_shows_in_metrics_status_and_top() -> None:
    with redis_trio() as servers, DelayProxyProcess((servers[2].host, servers[2].port)) as p:
        slow = f"{p.host}:{p.port}"
        addrs = [addr(servers[0]), addr(servers[1]), slow]
        c = client(servers[0].url(), addrs)
        c.wait_ready(30)
        name = c._svc.name
        with Load(c) as load:
            wait_for("traffic on every endpoint", lambda: min(requests(c).values()) > 50, 30)
            p.set_delay(0.03)
            before = _endpoint_series(name)
            n0 = requests(c)[slow]
            # The balancer keeps trying the slow one now and then.
            wait_for("replies from the slowed endpoint", lambda: requests(c)[slow] >= n0 + 5, 60)
            load.stop()
        after = _endpoint_series(name)
        assert set(after) == set(addrs), after.keys()
        mean = {}
        for a in addrs:
            h1, h0 = (x[a]["iokernel_endpoint_latency_seconds"] for x in (after, before))
            assert after[a]["iokernel_endpoint_requests_total"]["value"] >= 50
            assert after[a]["iokernel_endpoint_errors_total"]["value"] == 0
            mean[a] = (h1["value"] - h0["value"]) / max(h1["count"] - h0["count"], 1)
        print(f"\nmean latency per endpoint since the delay (s): {mean}")
        assert mean[slow] > 0.015 and all(mean[slow] > 5 * mean[a] for a in addrs[:2])

        where = admin.address() or admin.serve()
        status = json.loads(_cli.http_get(where, "/status", 5.0)[2])
        (svc,) = [s for s in status["services"] if s["name"] == name]
        eps = {e["address"]: e for e in svc["endpoints"]}
        assert set(eps) == set(addrs) and all(e["state"] == "up" for e in eps.values())
        assert eps[slow]["latency_ms"] > max(eps[a]["latency_ms"] for a in addrs[:2])

        buf = io.StringIO()
        assert _cli.main(["top", str(os.getpid()), "--once", "--interval", "0.05"], out=buf) == 0
        lines = [ln for ln in buf.getvalue().splitlines() if ln.strip().startswith("@ ")]
        print("\n".join(lines))
        for a in addrs:
            assert any(a in ln and " up " in ln for ln in lines), (a, lines)
