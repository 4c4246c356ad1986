"""Drive Debian's headless Chromium from the standard library (no extra dependency).

The DevTools protocol runs over a pipe (``--remote-debugging-pipe``: commands on the browser's
fd 3, answers on its fd 4, one JSON message per NUL-terminated frame). :class:`Browser` opens a
page at an exact viewport (``Emulation.setDeviceMetricsOverride``: headless windows cannot be
narrower than 500 px), evaluates :data:`MEASURE` in it and takes full-page screenshots. The report
page itself has no script; the measurement runs from outside.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

#: JavaScript returning the page's layout measurements as a JSON-able object.
MEASURE = r"""
(() => {
  const vw = document.documentElement.clientWidth, res = {vw: vw, docWidth: document.documentElement.scrollWidth};
  const top = el => el.getBoundingClientRect().top + window.scrollY;
  const bottom = el => el.getBoundingClientRect().bottom + window.scrollY;
  const v = document.getElementById('verdicts');
  res.verdictsTop = v ? top(v) : null; res.verdictsBottom = v ? bottom(v) : null;
  const t = document.querySelector('table'); res.firstTableTop = t ? top(t) : null;
  const scrollBox = el => { for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      const s = getComputedStyle(p).overflowX; if (s === 'auto' || s === 'scroll' || s === 'hidden') return p; }
    return null; };
  const wide = [];
  for (const el of document.body.querySelectorAll('*')) {
    if (el.closest('svg') && el.tagName.toLowerCase() !== 'svg') continue;
    if (el.closest('details:not([open])') && el.tagName.toLowerCase() !== 'summary' && !el.matches('details')) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    if (r.right <= vw + 0.5 && r.left >= -0.5) continue;
    const box = scrollBox(el);
    if (box) { const b = box.getBoundingClientRect(); if (b.right <= vw + 0.5 && b.left >= -0.5) continue; }
    wide.push(el.tagName + (el.id ? '#' + el.id : '') + ' ' + Math.round(r.left) + '..' + Math.round(r.right));
  }
  res.wide = wide.slice(0, 20);
  const clipped = [], scales = [];
  let texts = 0;
  for (const svg of document.querySelectorAll('svg.fig')) {
    const sr = svg.getBoundingClientRect(); if (!sr.width) continue;
    scales.push(sr.width / svg.viewBox.baseVal.width);
    for (const g of svg.querySelectorAll('g[id*="-text_"]')) {
      const r = g.getBoundingClientRect(); if (!r.width) continue;
      texts++;
      if (r.left < sr.left - 1 || r.right > sr.right + 1 || r.top < sr.top - 1 || r.bottom > sr.bottom + 1)
        clipped.push((svg.getAttribute('aria-label') || '') + ' ' + g.id);
    }
  }
  res.figures = scales.length; res.figureTexts = texts;
  res.minFigureScale = scales.length ? Math.min(...scales) : null;
  res.clipped = clipped.slice(0, 20);
  res.scrollBoxes = document.querySelectorAll('.tw').length;
  res.text = document.body.innerText;
  res.height = document.documentElement.scrollHeight;
  return res;
})()
"""


def find_chromium() -> str | None:
    """Path of a Chromium executable (``$CHROMIUM``, chromium, chromium-browser, google-chrome), or None."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Browser:
    """One headless Chromium, spoken to over the DevTools pipe. Use as a context manager."""

    def __init__(self, timeout: float = 60.0):
        exe = find_chromium()
        if exe is None:
            raise FileNotFoundError("chromium not found")
        self.timeout = timeout
        self._profile = tempfile.TemporaryDirectory()
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        cmd = (f'exec "{exe}" --headless --no-sandbox --disable-gpu --hide-scrollbars --no-first-run '
               f'--disable-extensions --user-data-dir="{self._profile.name}" --remote-debugging-pipe '
               f'about:blank 3<&{to_chrome_r} 4>&{from_chrome_w}')
        self.proc = subprocess.Popen(["bash", "-c", cmd], pass_fds=(to_chrome_r, from_chrome_w),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf = b""
        self._id = 0
        self._events: list[dict] = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.call("Page.enable", session=True)

    # -------------------------------------------------------------------- protocol
    def _read(self) -> dict:
        deadline = time.monotonic() + self.timeout
        while b"\0" not in self._buf:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: bool = False, **params) -> dict:
        """Send one DevTools command and return its result (events that arrive meanwhile are kept)."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        while True:
            m = self._read()
            if m.get("id") == self._id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self._events.append(m)

    def _wait_event(self, method: str) -> None:
        while True:
            for i, ev in enumerate(self._events):
                if ev.get("method") == method:
                    del self._events[: i + 1]
                    return
            self._events.append(self._read())

    # -------------------------------------------------------------------- pages
    def open(self, page: str | Path, width: int, height: int = 900) -> None:
        """Load ``page`` in a ``width`` × ``height`` CSS px viewport and wait for its load event."""
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        self._events.clear()
        self.call("Page.navigate", session=True, url=Path(page).resolve().as_uri())
        self._wait_event("Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of ``expression`` in the page (JSON-able)."""
        r = self.call("Runtime.evaluate", session=True, expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"script failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def measure(self, page: str | Path, width: int, height: int = 900) -> dict:
        """:data:`MEASURE` of ``page`` at ``width`` × ``height`` CSS px."""
        self.open(page, width, height)
        return self.evaluate(MEASURE)

    def screenshot(self, page: str | Path, out: str | Path, width: int, max_height: int = 16000) -> Path:
        """A full-page PNG of ``page`` laid out ``width`` CSS px wide (at most ``max_height`` px tall)."""
        self.open(page, width, 900)
        h = min(int(self.evaluate("document.documentElement.scrollHeight")), max_height)
        self.call("Emulation.setDeviceMetricsOverride", session=True, width=width, height=h, deviceScaleFactor=1,
                  mobile=False)
        data = self.call("Page.captureScreenshot", session=True, format="png")["data"]
        Path(out).write_bytes(base64.b64decode(data))
        return Path(out)

    def close(self) -> None:
        """Close the browser and its profile folder."""
        try:
            os.write(self._w, json.dumps({"id": 0, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001 - closing anyway
            self.proc.kill()
            self.proc.wait()
        finally:
            for fd in (self._r, self._w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._profile.cleanup()

    def __enter__(self) -> "Browser":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
