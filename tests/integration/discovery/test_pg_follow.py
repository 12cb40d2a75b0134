"""PostgreSQL follows a moved name too: two real postgres servers on
127.0.0.2 and 127.0.0.3 (same port), the name moved in dnsmasq under 20
tasks of load; and the libpq multi-host form spreads over both."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from iokernel import pg
from tests.integration.discovery.conftest import ADDRS
from tests.integration.discovery.load import blocking, until
from tests.servers import PostgresServer
from tests.servers.dns_server import DnsServer
from tests.servers.postgres_server import PG_DB, PG_PASSWORD, PG_USER
from tests.servers.process import ServerError, free_port

WHO = "SELECT host(inet_server_addr())"


@pytest.fixture(scope="module")
def pg_pair() -> Iterator[dict[str, PostgresServer]]:
    port = free_port(ADDRS["a"])
    servers: dict[str, PostgresServer] = {}
    try:
        for name in ("a", "b"):
            servers[name] = PostgresServer(host=ADDRS[name], port=port)
            servers[name].start()
    except ServerError as e:
        for s in servers.values():
            s.stop(cleanup=True)
        pytest.fail(f"could not start postgres on 127.0.0.2/3: {e}", pytrace=False)
    yield servers
    for s in servers.values():
        s.stop(cleanup=True)


@dataclass
class PgLoad:
    client: pg.AsyncClient
    tasks: int = 20
    done: list[tuple[float, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    _stop: bool = False

    async def _one(self) -> None:
        names = {v: k for k, v in ADDRS.items()}
        while not self._stop:
            t0 = time.monotonic()
            try:
                ip = await self.client.fetchval(WHO)
            except Exception as e:
                self.errors.append(e)
                await asyncio.sleep(0.01)
                continue
            self.done.append((t0, names.get(ip, ip)))

    async def __aenter__(self) -> PgLoad:
        self._t = [asyncio.create_task(self._one()) for _ in range(self.tasks)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop = True
        await asyncio.gather(*self._t)

    def counts(self, since: float = 0.0) -> dict[str, int]:
        out: dict[str, int] = {}
        for t, w in self.done:
            if t >= since:
                out[w] = out.get(w, 0) + 1
        return out

    def settled_at(self, since: float, who: str) -> float | None:
        t = None
        for start, w in sorted(d for d in self.done if d[0] >= since)[::-1]:
            if w != who:
                break
            t = start
        return t


def dsn(hosts: str) -> str:
    return f"postgresql://{PG_USER}:{PG_PASSWORD}@{hosts}/{PG_DB}"


async def test_postgres_follows_a_moved_name(dns: DnsServer,
                                             pg_pair: dict[str, PostgresServer]) -> None:
    a = pg_pair["a"]
    c = pg.AsyncClient(dsn(f"move.test:{a.port}") + "?application_name=follow")
    async with PgLoad(c) as load:
        await until(lambda: load.counts().get("a", 0) > 100, 60, "queries on a")
        await asyncio.to_thread(dns.set_hosts, {"move.test": [ADDRS["b"]]})
        moved = time.monotonic()
        await until(lambda: load.settled_at(moved, "b") is not None
                    and load.counts(time.monotonic() - 0.3).get("b", 0) > 20, 60, "queries on b")
        idle = await until(blocking(lambda: a.connections("follow") == 0), 60,
                           "a's connections closed")
    settled = load.settled_at(moved, "b")
    assert settled is not None
    print(f"\npostgres move a->b under 20 tasks: followed in {(settled - moved) * 1000:.0f} ms, "
          f"{len(load.errors)} failed of {len(load.done)}; old connections closed "
          f"{idle * 1000:.0f} ms later; after the change: {load.counts(moved)}")
    assert not load.errors, load.errors[:3]
    assert settled - moved <= 2.0
    await c.close()


async def test_libpq_multi_host_spreads_over_both(pg_pair: dict[str, PostgresServer]) -> None:
    a = pg_pair["a"]
    c = pg.AsyncClient(dsn(f"{ADDRS['a']}:{a.port},{ADDRS['b']}:{a.port}"))
    async with PgLoad(c) as load:
        await until(lambda: all(load.counts().get(k, 0) > 50 for k in "ab"), 60, "a and b")
    assert not load.errors, load.errors[:3]
    await c.close()
