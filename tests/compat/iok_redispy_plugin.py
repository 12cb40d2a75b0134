"""pytest plugin: redis-py's own test modules, run with iokernel's clients.

Loaded with ``-p iok_redispy_plugin`` by tests/compat/test_redispy_suite.py
into a pytest run over redis-py's source distribution (downloaded at test
set-up, never copied into this repository). It changes only what a user
migrating from redis-py changes:

* the clients: redis-py's ``_get_client`` (behind the ``r``, ``r2``,
  ``decoded_r`` ... fixtures) and the asyncio ``create_redis`` fixture build
  ``iokernel.redis.Client`` / ``AsyncClient`` on the same ``--redis-url``;
* the exception names: ``redis.ResponseError`` and friends become
  ``iokernel.redis``'s classes of the same name (what ``from iokernel.redis
  import ResponseError`` gives such a user);

and marks the tests that cannot apply (see ``compat_na.NOT_APPLICABLE``) as
skipped with their reason, so the pass rate counts applicable tests only.
"""

from __future__ import annotations

import fnmatch
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import pytest_asyncio
import redis as redispy
import redis.asyncio as redispy_asyncio
import redis.exceptions as redispy_exceptions
from compat_na import NOT_APPLICABLE

from iokernel import redis as iok

# redis-py connection options iokernel has no counterpart for (pool and
# socket details); dropped. Anything else is passed on, so an option
# iokernel lacks fails the test that uses it.
_DROPPED = {
    "protocol",
    "legacy_responses",
    "single_connection_client",
    "socket_keepalive",
    "retry_on_timeout",
    "connection_class",
}
_RENAMED = {"socket_timeout": "timeout", "socket_connect_timeout": "connect_timeout"}


#: Connection options iokernel takes in the URL, as such a user would write them.
_IN_URL = ("username", "password", "db")


def _options(kwargs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in _DROPPED or key in _IN_URL:
            continue
        out[_RENAMED.get(key, key)] = value
    return out


def _url(url: str, kwargs: dict[str, Any]) -> str:
    """``username``/``password``/``db`` keyword arguments moved into the URL."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{host}:{parts.port}" if parts.port else host
    user = kwargs.get("username", parts.username)
    password = kwargs.get("password", parts.password)
    if user is not None or password is not None:
        # user:@ (empty password): iokernel reads a bare "x@" as a password
        cred = quote(user or "", safe="") + ":" + quote(password or "", safe="")
        netloc = f"{cred}@{netloc}"
    path = f"/{kwargs['db']}" if "db" in kwargs else parts.path
    return urlunsplit((parts.scheme, netloc, path, parts.query, ""))


def _swap_exceptions() -> None:
    for name in dir(redispy_exceptions):
        ours = getattr(iok, name, None)
        if isinstance(ours, type) and issubclass(ours, BaseException):
            for module in (redispy_exceptions, redispy, redispy_asyncio):
                if hasattr(module, name):
                    setattr(module, name, ours)


def _get_client(
    cls: Any,
    request: Any,
    single_connection_client: bool = True,
    flushdb: bool = True,
    from_url: str | None = None,
    **kwargs: Any,
) -> iok.Client:
    base = from_url or request.config.getoption("--redis-url")
    url = _url(base, kwargs)
    client = iok.Client(url, **_options(kwargs))
    if request is not None:

        def teardown() -> None:
            # The fixture's ``with`` block has closed the client by now.
            client.close()
            if flushdb:
                with iok.Client(_url(base, {"db": kwargs["db"]} if "db" in kwargs else {})) as fresh:
                    fresh.flushdb()

        request.addfinalizer(teardown)
    return client


@pytest_asyncio.fixture(params=[(True,), (False,)], ids=["single", "pool"])
async def create_redis(request: Any) -> Any:
    clients: list[tuple[iok.AsyncClient, str, bool]] = []

    async def factory(
        url: str | None = None, cls: Any = None, flushdb: bool = True, **kwargs: Any
    ) -> iok.AsyncClient:
        url = _url(url or request.config.getoption("--redis-url"), kwargs)
        client = iok.AsyncClient(url, **_options(kwargs))
        clients.append((client, url, flushdb and "username" not in kwargs))
        return client

    yield factory
    for client, url, flush in clients:
        await client.aclose()
        if flush:
            fresh = iok.AsyncClient(url)
            await fresh.flushdb()
            await fresh.aclose()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart() -> None:
    """After redis-py's own session start (which asks the server with
    redis-py itself) and before the test modules are imported."""
    _swap_exceptions()


@pytest.fixture(scope="session")
def _no_tracemalloc() -> Any:
    """redis-py's conftest traces every allocation of the run (autouse): that
    slows the whole run several times over and checks nothing here."""
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_plugin_registered(plugin: Any) -> None:
    """Swap the client factories in redis-py's conftests before pytest reads
    their fixtures (and before the test modules import ``_get_client``)."""
    name = getattr(plugin, "__name__", "")
    if name == "tests.conftest":
        plugin._get_client = _get_client
        plugin.enable_tracemalloc = _no_tracemalloc
    elif name == "tests.test_asyncio.conftest":
        plugin.create_redis = create_redis


def _reason(nodeid: str) -> str | None:
    name = nodeid.split("[", 1)[0]
    for pattern, reason in NOT_APPLICABLE.items():
        if fnmatch.fnmatchcase(name, pattern):
            return reason
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        reason = _reason(item.nodeid)
        if reason is not None:
            item.add_marker(pytest.mark.skip(reason=f"n/a for iokernel: {reason}"))
