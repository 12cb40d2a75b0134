"""The native module does TLS with rustls: it links no OpenSSL (the wheel
must not carry or need a foreign libssl/libcrypto)."""

from __future__ import annotations

import subprocess

from iokernel import _native
from tests.servers.process import find_binary


def test_native_module_links_no_openssl() -> None:
    out = subprocess.run([find_binary("ldd"), _native.__file__], capture_output=True,
                         text=True, timeout=30, check=True).stdout
    assert "libc.so" in out, out  # ldd did read it
    assert "libssl" not in out and "libcrypto" not in out, out
