"""TLS keyword arguments of the clients, checked and turned into the
(name, text) pairs the native layer reads (after the URL's own, so a keyword
argument wins over the URL's query parameter of the same name).

Redis takes redis-py's names (``ssl``, ``ssl_ca_certs``, ``ssl_ca_path``,
``ssl_ca_data``, ``ssl_certfile``, ``ssl_keyfile``, ``ssl_password``,
``ssl_ciphers``, ``ssl_cert_reqs``, ``ssl_check_hostname``,
``ssl_min_version``); PostgreSQL takes libpq's (``sslmode``,
``sslrootcert``, ``sslcert``, ``sslkey``, ``sslpassword``, ``sslcrl``,
``sslcrldir``, ``sslcertmode``, ``sslnegotiation``) and asyncpg's
``ssl=`` (a mode string, True for verify-full, False for disable). The
values themselves (which modes exist, which combinations make sense) are
checked natively, with the same messages for URL parameters and keywords.
TLS is rustls inside the kernel, so Python ``ssl.SSLContext`` objects are not
accepted: the message says which options to use instead.

``sentinel_params``: the sentinels' own options of ``rediss+sentinel://``
(``sentinel_ssl`` and redis-py's ``sentinel_kwargs``).
"""

from __future__ import annotations

import enum
import inspect
import os
import ssl as _ssl
from collections.abc import Mapping
from typing import Any

Params = tuple[tuple[str, str], ...]

_CONTEXT = (
    "{name}= got an ssl.SSLContext: iokernel does TLS natively (rustls), so give "
    "the options instead: {instead}"
)


def _path(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        text = os.fspath(value)
        if isinstance(text, str) and text:
            return text
    raise TypeError(f"{name}={value!r} is not allowed: {name} must be a file path (str) or None")


def _text(name: str, value: Any, allowed: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, str):
        return value
    raise TypeError(f"{name}={value!r} is not allowed: {name} must be {allowed}")


def _flag(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, bool):
        raise TypeError(f"{name}={value!r} is not allowed: {name} must be True, False or None")
    return "true" if value else "false"


def _secret(name: str, value: Any) -> str | None:
    """A password (str, or bytes as Python's ssl takes it); callables, which
    Python's ssl also takes, are refused."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"{name} must be the key's password as str or bytes, not {type(value).__name__}")


def _pairs(**values: str | None) -> Params:
    return tuple((k, v) for k, v in values.items() if v is not None)


def redis_params(
    *,
    ssl: Any,
    ssl_ca_certs: Any,
    ssl_ca_data: Any,
    ssl_certfile: Any,
    ssl_keyfile: Any,
    ssl_cert_reqs: Any,
    ssl_check_hostname: Any,
    ssl_min_version: Any,
    ssl_ca_path: Any = None,
    ssl_password: Any = None,
    ssl_ciphers: Any = None,
) -> Params:
    """redis-py's TLS keyword arguments (None: not given)."""
    if isinstance(ssl, _ssl.SSLContext):
        raise TypeError(_CONTEXT.format(name="ssl", instead="ssl=True, ssl_ca_certs=..."))
    cert_reqs = ssl_cert_reqs
    if isinstance(cert_reqs, _ssl.VerifyMode):
        cert_reqs = {
            _ssl.CERT_NONE: "none",
            _ssl.CERT_OPTIONAL: "optional",
            _ssl.CERT_REQUIRED: "required",
        }[cert_reqs]
    ca_data = ssl_ca_data
    if isinstance(ca_data, (bytes, bytearray)):
        ca_data = bytes(ca_data).decode("ascii", "replace")
    return _pairs(
        ssl=_flag("ssl", ssl),
        ssl_ca_certs=_path("ssl_ca_certs", ssl_ca_certs),
        ssl_ca_path=_path("ssl_ca_path", ssl_ca_path),
        ssl_password=_secret("ssl_password", ssl_password),
        ssl_ciphers=_text("ssl_ciphers", ssl_ciphers, "a ':'-separated list of cipher suites"),
        ssl_ca_data=_text("ssl_ca_data", ca_data, "PEM text (str or bytes)"),
        ssl_certfile=_path("ssl_certfile", ssl_certfile),
        ssl_keyfile=_path("ssl_keyfile", ssl_keyfile),
        ssl_cert_reqs=_text(
            "ssl_cert_reqs", cert_reqs, "'required', 'optional', 'none' or an ssl.VerifyMode"
        ),
        ssl_check_hostname=_flag("ssl_check_hostname", ssl_check_hostname),
        ssl_min_version=_text(
            "ssl_min_version", ssl_min_version, "ssl.TLSVersion.TLSv1_2 / TLSv1_3 or its name"
        ),
    )


def pg_params(
    *,
    ssl: Any,
    sslmode: Any,
    sslrootcert: Any,
    sslcert: Any,
    sslkey: Any,
    sslnegotiation: Any,
    sslpassword: Any = None,
    sslcrl: Any = None,
    sslcrldir: Any = None,
    sslcertmode: Any = None,
) -> Params:
    """libpq's TLS keyword arguments and asyncpg's ``ssl=`` (None: not
    given). ``sslmode`` wins over ``ssl``."""
    if isinstance(ssl, _ssl.SSLContext):
        raise TypeError(
            _CONTEXT.format(name="ssl", instead="sslmode=, sslrootcert=, sslcert=, sslkey=")
        )
    mode = _text("sslmode", sslmode, "a libpq sslmode such as 'verify-full'")
    if mode is None and ssl is not None:
        if ssl is True:
            mode = "verify-full"
        elif ssl is False:
            mode = "disable"
        elif isinstance(ssl, str):
            mode = ssl
        else:
            raise TypeError(
                f"ssl={ssl!r} is not allowed: ssl must be True, False or an sslmode string "
                "('disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full')"
            )
    return _pairs(
        sslmode=mode,
        sslrootcert=_path("sslrootcert", sslrootcert),
        sslcert=_path("sslcert", sslcert),
        sslkey=_path("sslkey", sslkey),
        sslpassword=_secret("sslpassword", sslpassword),
        sslcrl=_path("sslcrl", sslcrl),
        sslcrldir=_path("sslcrldir", sslcrldir),
        sslcertmode=_text("sslcertmode", sslcertmode, "'allow' or 'disable'"),
        sslnegotiation=_text("sslnegotiation", sslnegotiation, "'postgres' or 'direct'"),
    )


_REDIS_NAMES = tuple(inspect.signature(redis_params).parameters)


def sentinel_params(
    sentinel_ssl: Any, sentinel_kwargs: Any
) -> tuple[Params, str | None, str | None]:
    """The sentinels' own TLS options, named as the data nodes' (``ssl``,
    ``ssl_ca_certs`` ...): redis-py's ``sentinel_kwargs`` (a mapping of its
    TLS names, and ``username``/``password``), then ``sentinel_ssl`` (a bool,
    which wins over ``sentinel_kwargs["ssl"]``). Returns the pairs and the
    username and password found in ``sentinel_kwargs``."""
    if sentinel_kwargs is None:
        sentinel_kwargs = {}
    if not isinstance(sentinel_kwargs, Mapping):
        raise TypeError(
            f"sentinel_kwargs must be a dict (redis-py's form), not {type(sentinel_kwargs).__name__}"
        )
    unknown = sorted(str(k) for k in sentinel_kwargs if k not in (*_REDIS_NAMES, "username", "password"))
    if unknown:
        raise TypeError(
            f"sentinel_kwargs: {', '.join(unknown)} not supported; it takes "
            f"username, password and the TLS options {', '.join(_REDIS_NAMES)}"
        )
    tls = {k: sentinel_kwargs.get(k) for k in _REDIS_NAMES}
    if sentinel_ssl is not None:
        tls["ssl"] = sentinel_ssl
    try:
        pairs = redis_params(**tls)
    except TypeError as e:
        raise TypeError(f"sentinel_kwargs / sentinel_ssl: {e}") from None
    user = sentinel_kwargs.get("username")
    password = sentinel_kwargs.get("password")
    return pairs, user, password
