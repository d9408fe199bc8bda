"""A headless Chromium driven over the Chrome DevTools Protocol, for UI tests.

No browser-automation dependency: Debian's ``/usr/bin/chromium`` is started with a remote
debugging port of its own choosing (read back from ``DevToolsActivePort`` in its fresh profile),
and one page target is driven over its websocket with ``websockets`` (a Prefect dependency).

    with Browser.launch(profile_dir) as browser:
        browser.navigate("http://127.0.0.1:4200/")
        text = browser.wait_for_text(["Completed"], timeout=60)
        png = browser.screenshot()
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from websockets.sync.client import ClientConnection, connect

#: The flags this machine's headless Chromium needs (root, no GPU, a closed network).
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--disable-default-apps", "--mute-audio",
                  "--hide-scrollbars", "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """Debian's Chromium (``$BEATFRAME_CHROMIUM`` overrides), or None when it is not installed."""
    for candidate in (os.environ.get("BEATFRAME_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


class CDPError(RuntimeError):
    pass


class Browser:
    """One headless Chromium process (its own process group) and one page of it."""

    def __init__(self, proc: subprocess.Popen, ws: ClientConnection, log_path: Path) -> None:
        self.proc = proc
        self._ws = ws
        self._ids = itertools.count(1)
        self.log_path = log_path

    @classmethod
    def launch(cls, profile_dir: Path, *, executable: str | None = None, width: int = 1440, height: int = 1000,
               timeout: float = 30.0) -> Browser:
        executable = executable or chromium_path()
        if executable is None:
            raise FileNotFoundError("chromium is not installed")
        profile_dir.mkdir(parents=True, exist_ok=True)
        (profile_dir / "DevToolsActivePort").unlink(missing_ok=True)  # a reused profile's stale port
        log_path = profile_dir.parent / f"{profile_dir.name}-chromium.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "--remote-debugging-port=0",
                 "--remote-debugging-address=127.0.0.1", f"--window-size={width},{height}", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        try:
            port = _wait_for_port(proc, profile_dir / "DevToolsActivePort", timeout, log_path)
            ws_url = _page_websocket(port, timeout)
            ws = connect(ws_url, max_size=None, open_timeout=timeout)
        except BaseException:
            stop_group(proc)
            raise
        browser = cls(proc, ws, log_path)
        browser.call("Page.enable")
        browser.call("Runtime.enable")
        browser.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                     mobile=False)
        return browser

    # --- the protocol -----------------------------------------------------------------------

    def call(self, method: str, timeout: float = 30.0, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile are dropped."""
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CDPError(f"{method}: no answer within {timeout} s")
            message = json.loads(self._ws.recv(timeout=remaining))
            if message.get("id") != message_id:
                continue
            if "error" in message:
                raise CDPError(f"{method}: {message['error']}")
            return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CDPError(f"evaluate {expression!r}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    # --- what tests use ---------------------------------------------------------------------

    def navigate(self, url: str) -> None:
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise CDPError(f"navigate to {url}: {result['errorText']}")

    def url(self) -> str:
        return self.evaluate("location.href")

    def text(self) -> str:
        """The page's visible text (``document.body.innerText``), or "" before there is a body."""
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def wait_for_text(self, needles: Iterable[str], *, timeout: float = 60.0, interval: float = 0.25) -> str:
        """Poll the page's text until it contains every needle (case-sensitive); returns the text.

        Raises AssertionError naming what is missing, with the last text seen, on timeout.
        """
        needles = list(needles)
        deadline = time.monotonic() + timeout
        text = ""
        while True:
            text = self.text()
            missing = [n for n in needles if n not in text]
            if not missing:
                return text
            if time.monotonic() >= deadline:
                raise AssertionError(f"page {self.url()} lacks {missing} after {timeout:.0f} s; it shows:\n"
                                     f"{text[:4000]}")
            time.sleep(interval)

    def click_text(self, text: str, selector: str = "a, button, [role=tab]") -> bool:
        """Click the first element matching ``selector`` whose visible text is ``text``."""
        return bool(self.evaluate(
            f"(() => {{ const t = {json.dumps(text)};"
            f" const el = [...document.querySelectorAll({json.dumps(selector)})]"
            f".find(e => (e.innerText || '').trim() === t);"
            f" if (!el) return false; el.scrollIntoView(); el.click(); return true; }})()"))

    def screenshot(self, *, full_page: bool = True) -> bytes:
        params: dict = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": max(1, size["width"]),
                              "height": min(max(1, size["height"]), 6000), "scale": 1}
        return base64.b64decode(self.call("Page.captureScreenshot", timeout=60, **params)["data"])

    # --- lifetime ---------------------------------------------------------------------------

    def close(self) -> list[int]:
        """Close the page's socket and end the browser; returns pids that survived (should be none)."""
        try:
            self._ws.close()
        except Exception:  # noqa: BLE001 - the browser may be gone already
            pass
        return stop_group(self.proc)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _wait_for_port(proc: subprocess.Popen, active_port_file: Path, timeout: float, log_path: Path) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise CDPError(f"chromium exited at start ({proc.returncode}): {log_path.read_text()[-2000:]}")
        try:
            first_line = active_port_file.read_text().splitlines()[0]
            return int(first_line)
        except (OSError, IndexError, ValueError):
            time.sleep(0.1)
    raise CDPError(f"chromium opened no debugging port within {timeout} s: {log_path.read_text()[-2000:]}")


def _page_websocket(port: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                targets = json.loads(response.read())
        except OSError:
            targets = []
        pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.1)
    raise CDPError(f"chromium on port {port} listed no page within {timeout} s")


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group ``pgid``, from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def stop_group(proc: subprocess.Popen, grace: float = 10.0) -> list[int]:
    """End a process started with ``start_new_session=True`` and everything in its group: SIGTERM,
    then SIGKILL after ``grace`` seconds. Returns the pids still alive after that (should be none)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
    deadline = time.monotonic() + grace
    while True:
        # children (renderers, GPU process, zygotes; server workers) share the group
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if proc.poll() is None:
            try:
                proc.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass
        left = group_members(proc.pid)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)
