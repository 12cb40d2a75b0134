#!/usr/bin/env bash
# Regenerate docs/img/dashboard.png: a screenshot of the admin dashboard of a
# demo process under traffic, taken with headless Chromium.
#
#   docs/screenshot.sh                 # needs: make build, `apt-get install chromium`
#   OUT=/tmp/x.png docs/screenshot.sh
#
# It starts a private redis-server (tests/servers) and a demo process that
# serves its admin endpoint on loopback TCP and sends traffic: a healthy
# service, a service whose server is down, two requests parked in BLPOP, and
# an event loop that is sometimes busy so pick-up time shows. Chromium opens
# http://127.0.0.1:PORT/ at 1280x900 in real time, lets the page refresh a few
# times, and the screenshot is taken through the DevTools protocol. (Not with
# --virtual-time-budget: that runs the page's 2 s refreshes in a few
# milliseconds of real time, so every rate would be measured over those.)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
OUT="${OUT:-$ROOT/docs/img/dashboard.png}"
CHROMIUM="${CHROMIUM:-$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)}"
[ -n "$CHROMIUM" ] || { echo "chromium not found: apt-get install -y chromium" >&2; exit 1; }

WORK="$(mktemp -d /tmp/iok-shot.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- the demo
cat > "$WORK/demo.py" <<'PYEOF'
import asyncio, os, random, threading, time
import iokernel
from iokernel import metrics, redis

url = os.environ["IOKERNEL_REDIS_URL"]
print(iokernel.admin.serve("tcp:127.0.0.1:0"), flush=True)

handled = metrics.counter("app_requests_total", "HTTP requests handled", labels=("route",))
latency = metrics.histogram("app_handler_seconds", "Handler latency")
workers = metrics.gauge("app_busy_workers", "Workers busy")


def parked():
    r = redis.Client(url, timeout=30)
    while True:
        r.blpop("jobs:queue", timeout=25)


for _ in range(2):
    threading.Thread(target=parked, daemon=True).start()


async def worker(c, i):
    while True:
        t0 = time.perf_counter()
        route = random.choice(["/items", "/items/{id}", "/health"])
        await c.set(f"item:{i}", "x" * random.randint(10, 400))
        await c.get(f"item:{random.randint(0, 50)}")
        handled.labels(route).inc()
        latency.observe(time.perf_counter() - t0)
        await asyncio.sleep(random.uniform(0.005, 0.05))


async def down_service():
    c = redis.AsyncClient(os.environ["DOWN_URL"], timeout=0.5)
    while True:
        try:
            await c.get("x")
        except iokernel.Error:
            pass
        await asyncio.sleep(0.2)


async def busy_sometimes():
    while True:
        await asyncio.sleep(0.5)
        workers.set(random.randint(2, 12))
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < 0.03:  # a CPU-heavy handler
            pass


async def main():
    c = redis.AsyncClient(url)
    await asyncio.gather(*(worker(c, i) for i in range(40)), down_service(), busy_sometimes())


asyncio.run(main())
PYEOF

# ------------------------------------------- screenshot through DevTools
cat > "$WORK/shot.py" <<'PYEOF'
import base64, json, re, secrets, socket, struct, subprocess, sys, time, urllib.request

chromium, url, out, work, wait = sys.argv[1:6]
proc = subprocess.Popen(
    [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
     "--remote-debugging-port=0", f"--user-data-dir={work}/profile",
     "--window-size=1280,900", url],
    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


class WS:
    """Just enough of a websocket client for one DevTools request."""

    def __init__(self, ws_url):
        hostport, path = ws_url[len("ws://"):].split("/", 1)
        host, port = hostport.rsplit(":", 1)
        self.s = socket.create_connection((host, int(port)), timeout=30)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        self.s.sendall((f"GET /{path} HTTP/1.1\r\nHost: {hostport}\r\nUpgrade: websocket\r\n"
                        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.s.recv(4096)
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n")[0]:
            raise RuntimeError(f"websocket upgrade refused: {head[:200]!r}")

    def send(self, obj):
        data = json.dumps(obj).encode()
        mask = secrets.token_bytes(4)
        n = len(data)
        hdr = b"\x81" + (bytes([0x80 | n]) if n < 126 else b"\xfe" + struct.pack(">H", n))
        self.s.sendall(hdr + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(1 << 20)
            if not chunk:
                raise EOFError("DevTools closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        msg = b""
        while True:
            b0, b1 = self._need(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._need(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._need(8))[0]
            msg += self._need(n)
            if b0 & 0x80:
                return json.loads(msg)


try:
    browser = None
    deadline = time.time() + 30
    while time.time() < deadline and browser is None:
        m = re.search(r"DevTools listening on (ws://\S+)", proc.stderr.readline())
        if m:
            browser = m.group(1)
    if browser is None:
        sys.exit("chromium did not start its DevTools endpoint")
    hostport = browser[len("ws://"):].split("/", 1)[0]
    time.sleep(float(wait))  # let the page refresh a few times
    pages = json.load(urllib.request.urlopen(f"http://{hostport}/json/list"))
    page = next(p for p in pages if p.get("type") == "page")
    ws = WS(page["webSocketDebuggerUrl"])
    def call(i, method, params):
        ws.send({"id": i, "method": method, "params": params})
        while (reply := ws.recv()).get("id") != i:
            pass
        return reply["result"]

    # the whole page (up to 1800 px), 1280 px wide
    size = call(1, "Page.getLayoutMetrics", {})["cssContentSize"]
    height = min(1800, int(size["height"]))
    reply = {"result": call(2, "Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": 1280, "height": height, "scale": 1}})}
    with open(out, "wb") as f:
        f.write(base64.b64decode(reply["result"]["data"]))
finally:
    proc.terminate()
    proc.wait(10)
PYEOF

# ------------------------------------------------------------------- run
cd "$ROOT"
DOWN_PORT="$("$PY" -c 'from tests.servers import dead_port; print(dead_port())')"
mkdir -p "$(dirname "$OUT")"
export WORK PY OUT CHROMIUM DOWN_PORT
"$PY" -m tests.servers redis -- bash -c '
    set -euo pipefail
    DOWN_URL="redis://127.0.0.1:$DOWN_PORT/0" "$PY" "$WORK/demo.py" > "$WORK/addr" 2> "$WORK/demo.err" &
    DEMO=$!
    trap "kill $DEMO 2>/dev/null || true" EXIT
    for _ in $(seq 100); do [ -s "$WORK/addr" ] && break; sleep 0.1; done
    ADDR="$(head -1 "$WORK/addr")"
    [ -n "$ADDR" ] || { cat "$WORK/demo.err" >&2; exit 1; }
    echo "demo pid $DEMO, admin endpoint $ADDR"
    sleep 2
    "$PY" "$WORK/shot.py" "$CHROMIUM" "http://127.0.0.1:${ADDR##*:}/" "$OUT" "$WORK" "${WAIT:-9}"
'
echo "wrote $OUT"
