"""Certificates for the TLS tests, made with Debian's ``openssl`` command at
test set-up (never checked in): a CA and a second, untrusted CA; server
certificates for 127.0.0.1/localhost (good), for localhost only (no IP
address: what an address Sentinel gives is not), for another host name, for
two names (no IP address), an expired one, a revoked one (on the CA's
revocation list, ``crl``) and one signed by the untrusted CA; a client
certificate (CN ``certuser``, for PostgreSQL's ``cert`` authentication) and
one from the untrusted CA. Keys are unencrypted PKCS#8 PEM (P-256); the
client key also encrypted (PKCS#8 PBES2, password ``KEY_PASSWORD``) and in
OpenSSL's traditional encrypted form.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.servers.process import find_binary

CLIENT_USER = "certuser"
KEY_PASSWORD = "key-secret"
NAME = "db.example.com"
NAME2 = "db2.example.com"


@dataclass(frozen=True)
class Pair:
    cert: str
    key: str


@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: str
    other_ca: str
    server: Pair
    localhost_only: Pair
    wrong_host: Pair
    two_names: Pair
    expired: Pair
    revoked: Pair
    crl: str
    untrusted: Pair
    client: Pair
    client_untrusted: Pair
    client_key_encrypted: str
    client_key_traditional: str


def _run(*argv: str, cwd: Path) -> None:
    proc = subprocess.run([find_binary("openssl"), *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(argv)} failed: {proc.stderr[-2000:]}")


_CA_CONF = """
[ ca ]
default_ca = ca_default
[ ca_default ]
dir = {dir}
database = $dir/{name}.index
new_certs_dir = $dir
serial = $dir/{name}.serial
default_md = sha256
crlnumber = $dir/{name}.crlnumber
default_crl_days = 30
crl_extensions = crl_ext
policy = policy_any
copy_extensions = none
unique_subject = no
[ policy_any ]
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


def _ca(d: Path, name: str) -> None:
    _run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "3650",
         "-subj", f"/CN=iokernel test {name}",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / f"{name}.index").write_text("")
    (d / f"{name}.serial").write_text("1000\n")
    (d / f"{name}.crlnumber").write_text("1000\n")
    (d / f"{name}.cnf").write_text(_CA_CONF.format(dir=d, name=name))


def _leaf(d: Path, name: str, ca: str, cn: str, ext: str,
          dates: tuple[str, str] | None = None) -> Pair:
    _run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
         "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}", cwd=d)
    (d / f"{name}.ext").write_text(f"[ext]\nbasicConstraints=CA:FALSE\n{ext}\n")
    when = ["-startdate", dates[0], "-enddate", dates[1]] if dates else ["-days", "825"]
    _run("ca", "-batch", "-notext", "-config", f"{ca}.cnf", "-cert", f"{ca}.pem",
         "-keyfile", f"{ca}.key", "-in", f"{name}.csr", "-out", f"{name}.pem",
         "-extfile", f"{name}.ext", "-extensions", "ext", *when, cwd=d)
    return Pair(str(d / f"{name}.pem"), str(d / f"{name}.key"))


SERVER_EXT = ("subjectAltName=DNS:localhost,IP:127.0.0.1\n"
              "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth")
CLIENT_EXT = "keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"


def _server_ext(*names: str) -> str:
    sans = ",".join(f"DNS:{n}" for n in names)
    return f"subjectAltName={sans}\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth"


def _revoke(d: Path, pair: Pair) -> str:
    """Revoke `pair` (signed by "ca") and write the CA's revocation list."""
    ca = ["-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key"]
    _run("ca", *ca, "-revoke", pair.cert, cwd=d)
    _run("ca", *ca, "-gencrl", "-out", "ca.crl", cwd=d)
    return str(d / "ca.crl")


def _encrypted(d: Path, key: str) -> tuple[str, str]:
    """`key` encrypted with KEY_PASSWORD: PKCS#8 (PBES2, AES-256-CBC) and
    OpenSSL's traditional PEM encryption."""
    _run("pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in", key, "-out", "client_enc.key",
         "-passout", f"pass:{KEY_PASSWORD}", cwd=d)
    _run("ec", "-aes256", "-in", key, "-out", "client_trad.key",
         "-passout", f"pass:{KEY_PASSWORD}", cwd=d)
    return str(d / "client_enc.key"), str(d / "client_trad.key")


def make_certs(d: Path) -> Certs:
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca")
    _ca(d, "other_ca")
    revoked = _leaf(d, "revoked", "ca", "localhost", SERVER_EXT)
    client = _leaf(d, "client", "ca", CLIENT_USER, CLIENT_EXT)
    enc, trad = _encrypted(d, client.key)
    return Certs(
        dir=d,
        ca=str(d / "ca.pem"),
        other_ca=str(d / "other_ca.pem"),
        server=_leaf(d, "server", "ca", "localhost", SERVER_EXT),
        localhost_only=_leaf(d, "localhost_only", "ca", "localhost", _server_ext("localhost")),
        wrong_host=_leaf(d, "wrong_host", "ca", NAME, _server_ext(NAME)),
        two_names=_leaf(d, "two_names", "ca", NAME, _server_ext(NAME, NAME2)),
        expired=_leaf(d, "expired", "ca", "localhost", SERVER_EXT,
                      dates=("20200101000000Z", "20210101000000Z")),
        revoked=revoked,
        crl=_revoke(d, revoked),
        untrusted=_leaf(d, "untrusted", "other_ca", "localhost", SERVER_EXT),
        client=client,
        client_untrusted=_leaf(d, "client_untrusted", "other_ca", CLIENT_USER, CLIENT_EXT),
        client_key_encrypted=enc,
        client_key_traditional=trad,
    )
