"""The kernel's out-of-band cancel must never fail the query behind the one it
was meant for (src/protocols/pg.rs, `Feed::Retry`).

PostgreSQL aborts whatever the backend runs when a CancelRequest arrives. A
relay in front of the real server holds back every connection after the
first by 0.4 s, so the cancel the kernel sends for a silent overdue query
arrives only after that query has finished and the next pipelined one runs:
the race, made certain. The next query must still get its own answer, and
its effects must happen exactly once.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator

import pytest

import iokernel
from iokernel import pg
from tests.faults.relay import Relay
from tests.servers import PostgresServer

# The kernel cancels a head that is overdue and silent for 250 ms: the slow
# query times out at 0.05 s, is cancelled at ~0.30 s, ends by itself at
# 0.35 s; the held-back cancel lands at ~0.70 s, on the query behind it.
SLOW = "SELECT pg_sleep(0.35)"
HOLD_CANCEL = 0.4


@pytest.fixture
def via_relay(pg_server: PostgresServer) -> Iterator[str]:
    with Relay((pg_server.host, pg_server.port),
               delay=lambda i: 0.0 if i == 0 else HOLD_CANCEL) as r:
        yield pg_server.dsn(application_name="iok-race").replace(
            f":{pg_server.port}/", f":{r.port}/")


@pytest.fixture
def counter_fn(pg_server: PostgresServer) -> Iterator[str]:
    t = f"race_{uuid.uuid4().hex[:10]}"
    pg_server.sql(
        f"CREATE TABLE {t} (id int); "
        f"CREATE FUNCTION {t}_ins(k int) RETURNS int LANGUAGE plpgsql AS $$ "
        f"BEGIN INSERT INTO {t} VALUES (k); PERFORM pg_sleep(1); RETURN k; END $$"
    )
    yield t
    pg_server.sql(f"DROP FUNCTION {t}_ins(int); DROP TABLE {t}")


def test_a_late_cancel_is_not_felt_by_the_next_query_async(
    via_relay: str, counter_fn: str, pg_server: PostgresServer
) -> None:
    async def main() -> None:
        db = pg.AsyncClient(via_relay, connections=1, timeout=30.0,
                            health_check_interval=None)
        await db.fetchval("SELECT 1")
        slow = asyncio.ensure_future(db.fetchval(SLOW, timeout=0.05))
        await asyncio.sleep(0.01)
        # Inserts its row, then sleeps through the moment the cancel lands.
        victim = asyncio.ensure_future(db.fetchval(f"SELECT {counter_fn}_ins($1)", 7))
        t0 = time.monotonic()
        with pytest.raises(iokernel.TimeoutError):
            await slow
        assert await victim == 7
        # It really was cancelled once and run again (≈ 0.35 + 0.35 + 1 s).
        assert time.monotonic() - t0 > 1.2
        assert await db.fetchval("SELECT 1") == 1
        await db.close()

    asyncio.run(main())
    assert pg_server.sql(f"SELECT count(*), min(id) FROM {counter_fn}") == "1|7"


def test_a_late_cancel_is_not_felt_by_the_next_query_blocking(
    via_relay: str, counter_fn: str, pg_server: PostgresServer
) -> None:
    import threading

    db = pg.Client(via_relay, connections=1, timeout=30.0, health_check_interval=None)
    db.fetchval("SELECT 1")
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            db.fetchval(SLOW, timeout=0.05)
        except BaseException as e:
            errors.append(e)

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.01)
    assert db.fetchval(f"SELECT {counter_fn}_ins($1)", 8) == 8
    t.join(timeout=10)
    assert len(errors) == 1 and isinstance(errors[0], iokernel.TimeoutError), errors
    db.close()
    assert pg_server.sql(f"SELECT count(*), min(id) FROM {counter_fn}") == "1|8"


def test_a_late_cancel_inside_a_transaction_is_reported_not_retried(
    via_relay: str, counter_fn: str, pg_server: PostgresServer
) -> None:
    """On a dedicated connection inside BEGIN a cancelled statement aborts the
    transaction; running it again would fail anyway, so the caller sees it."""

    async def main() -> None:
        db = pg.AsyncClient(via_relay, connections=1, timeout=30.0,
                            health_check_interval=None)
        with pytest.raises(pg.PostgresError) as ei:
            async with db.transaction() as tx:
                slow = asyncio.ensure_future(tx.fetchval(SLOW, timeout=0.05))
                await asyncio.sleep(0.01)
                victim = asyncio.ensure_future(tx.fetchval(f"SELECT {counter_fn}_ins($1)", 9))
                with pytest.raises(iokernel.TimeoutError):
                    await slow
                await victim
        assert ei.value.sqlstate == "57014"
        assert await db.fetchval("SELECT 2") == 2
        await db.close()

    asyncio.run(main())
    assert pg_server.sql(f"SELECT count(*) FROM {counter_fn}") == "0"
