"""The Prefect UI as operators see it: a rendered Canvas's flow run in headless Chromium.

The session's ``prefect_server`` (``prefect_test_harness``) serves no UI: Prefect starts it with
``PREFECT_UI_ENABLED=0`` as an ephemeral server. So this module starts a real
``prefect server start`` on a free loopback port with its own ``PREFECT_HOME``, renders a Canvas
against it with the CLI (``beatframe canvas``, ``PREFECT_API_URL`` pointing at it, so the CLI
starts no server of its own), and drives Debian's Chromium over the DevTools protocol
(:mod:`cdp`) through the run's pages in the default (V2) UI and the V1 UI: its task runs (the
render's stages), its artifacts, the cost table with its rows and the progress artifact.
Every page must also have reached its API (no "Can't connect to Server API").

A last test checks the server operators actually get (``beatframe server start``, which
``beatframe canvas`` starts too) points its UI at itself.

Every page is kept as a PNG under ``$BEATFRAME_TEST_ARTIFACTS/prefect-ui`` (default: a pytest
temporary folder); the folder is printed. Needs ``/usr/bin/chromium``:
``apt-get update && apt-get install -y chromium`` (skipped without it, unless
``BEATFRAME_REQUIRE_SYSTEM_PACKAGES=1``, which makes a missing browser a failure).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from cdp import Browser, chromium_path, group_members, stop_group

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

INSTALL_HINT = "apt-get update && apt-get install -y chromium"
#: The Canvas flow's stages as task names (each run's name adds a suffix: generate-canvas-clip-8e6).
STAGE_TASKS = ["fetch-inputs", "hash-inputs", "analyze", "plan-canvas-shots", "choose-generator",
               "generate-canvas-clip", "stitch-canvas", "check-canvas", "upload", "canvas-manifest"]
#: What the UI shows when it cannot reach the API it was told about (a wrong PREFECT_UI_API_URL).
UI_API_ERROR = "Can't connect to Server API"
PAGE_TIMEOUT_S = 45.0


# --- fixtures: browser, server, render ---------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> str:
    path = chromium_path()
    if path is None:
        reason = f"headless Chromium is not installed (CI: `{INSTALL_HINT}`)"
        if os.environ.get("BEATFRAME_REQUIRE_SYSTEM_PACKAGES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    root = os.environ.get("BEATFRAME_TEST_ARTIFACTS")
    folder = Path(root) / "prefect-ui" if root else tmp_path_factory.mktemp("prefect-ui")
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nPrefect UI screenshots: {folder}")
    return folder


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def ui_server(chromium, tmp_path_factory):
    """A real ``prefect server start`` with the UI, on a free loopback port; its base URL."""
    home = tmp_path_factory.mktemp("prefect-ui-server")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PREFECT_API_", "PREFECT_SERVER_DATABASE_", "PREFECT_UI_"))}
    env.update({
        "PREFECT_HOME": str(home / "home"),
        "PREFECT_UI_ENABLED": "true",
        # without it the UI calls http://127.0.0.1:4200/api, whatever --port says
        "PREFECT_UI_API_URL": f"{base}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    })
    log_path = home / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"prefect server exited at start ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base}/api/health", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"prefect server did not answer in 120 s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield base
    finally:
        left = stop_group(proc)
        assert not left, f"the Prefect server left processes behind: {left}"


@pytest.fixture(scope="module")
def rendered(ui_server, song, tmp_path_factory) -> dict:
    """``beatframe canvas`` of the song (4 s) against the UI server, in a fresh data dir (no cache hits)."""
    work = tmp_path_factory.mktemp("prefect-ui-render")
    env = {**os.environ,
           "PREFECT_API_URL": f"{ui_server}/api",
           "PREFECT_HOME": str(work / "prefect-home"),
           "PREFECT_LOCAL_STORAGE_PATH": str(work / "results"),
           "BEATFRAME_DATA_DIR": str(work / "data")}
    proc = subprocess.run(
        [sys.executable, "-m", "beatframe.cli", "canvas", str(song), "--out", str(work / "out"),
         "--seconds", "4", "--seed", "7", "--template", "neon-pulse"],
        cwd=work, env=env, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not (work / "data" / "prefect" / "server.json").exists(), "the CLI started a server of its own"
    manifest = json.loads((work / "out" / "manifest.json").read_text())
    run_id = manifest["provenance"]["prefect_flow_run_id"]
    flow_run = _get_json(f"{ui_server}/api/flow_runs/{run_id}")
    assert flow_run["state"]["type"] == "COMPLETED"
    artifacts = _get_json(f"{ui_server}/api/artifacts/filter",
                          {"artifacts": {"flow_run_id": {"any_": [run_id]}}, "limit": 50, "offset": 0})
    by_key = {a["key"]: a for a in artifacts if a.get("key")}
    assert {"canvas-cost", "canvas-progress"} <= set(by_key), sorted(by_key)
    return {"run_id": run_id, "run_name": flow_run["name"], "manifest": manifest, "artifacts": by_key}


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    browser = Browser.launch(profile, executable=chromium, width=1440, height=1000)
    try:
        yield browser
    finally:
        left = browser.close()
        assert not left, f"Chromium left processes behind: {left}"


# --- helpers ----------------------------------------------------------------------------------

def open_page(browser: Browser, url: str, needles: list[str]) -> str:
    """Load ``url`` and wait until its text shows every needle; the UI must reach its API."""
    browser.navigate(url)
    text = browser.wait_for_text(needles, timeout=PAGE_TIMEOUT_S)
    assert UI_API_ERROR not in text, text[:2000]
    return text


def keep_screenshot(browser: Browser, folder: Path, name: str) -> Path:
    from PIL import Image, ImageStat

    path = folder / f"{name}.png"
    path.write_bytes(browser.screenshot())
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        assert width >= 1000 and height >= 600, (path, image.size)
        grey = image.convert("L")
        spread = ImageStat.Stat(grey).stddev[0]
        colours = len(grey.getcolors(maxcolors=256) or range(256))
    # a page with text and widgets, not a blank or single-colour frame
    assert path.stat().st_size > 20_000 and spread > 10 and colours > 32, (path, spread, colours)
    print(f"screenshot: {path}")
    return path


def link_to(browser: Browser, text: str, href_part: str) -> str:
    """The href of the first link whose URL contains ``href_part`` and whose text contains ``text``."""
    href = browser.evaluate(
        f"(() => {{ const a = [...document.querySelectorAll('a[href*={json.dumps(href_part)}]')]"
        f".find(e => (e.innerText || '').includes({json.dumps(text)})); return a ? a.href : null; }})()")
    assert href, f"no link to {href_part} showing {text!r} on {browser.url()}"
    return href


# --- the checks --------------------------------------------------------------------------------

def test_ui_opens_on_its_default_ui(browser, ui_server, rendered, screenshots):
    """An operator opens the printed UI address: the dashboard of the default (V2) UI, reaching its API."""
    open_page(browser, f"{ui_server}/", ["Dashboard", "Runs", "Flows"])
    assert "/v2" in browser.url(), browser.url()
    # the run shows up in the runs list, under the render flow
    open_page(browser, f"{ui_server}/v2/runs", [rendered["run_name"], "render_canvas"])
    keep_screenshot(browser, screenshots, "v2-runs")


def test_flow_run_page_shows_the_stages(browser, ui_server, rendered, screenshots):
    run_id, run_name = rendered["run_id"], rendered["run_name"]
    text = open_page(browser, f"{ui_server}/v2/runs/flow-run/{run_id}?tab=TaskRuns",
                     [run_name, "render_canvas", "Completed", *(f"{t}-" for t in STAGE_TASKS)])
    assert f"{len(STAGE_TASKS)} Task runs" in text
    keep_screenshot(browser, screenshots, "v2-flow-run-task-runs")


def test_artifacts_tab_lists_cost_table_and_progress(browser, ui_server, rendered, screenshots):
    run_id = rendered["run_id"]
    cost, progress = rendered["artifacts"]["canvas-cost"], rendered["artifacts"]["canvas-progress"]
    text = open_page(browser, f"{ui_server}/v2/runs/flow-run/{run_id}?tab=Artifacts",
                     ["canvas-cost", "canvas-progress", cost["description"], progress["description"]])
    assert "TABLE" in text.upper() and "PROGRESS" in text.upper()
    keep_screenshot(browser, screenshots, "v2-flow-run-artifacts")


def open_artifact(browser: Browser, ui_server: str, rendered: dict, key: str) -> str:
    """Click through as an operator: the run's Artifacts tab, the key's page, its (only) artifact.
    Returns the artifact page's URL."""
    artifact = rendered["artifacts"][key]
    open_page(browser, f"{ui_server}/v2/runs/flow-run/{rendered['run_id']}?tab=Artifacts", [key])
    key_page = link_to(browser, key, f"/artifacts/key/{key}")
    open_page(browser, key_page, [key, f"Flow run: {rendered['run_name']}", artifact["id"][:8]])
    href = link_to(browser, artifact["id"][:8], f"/artifacts/artifact/{artifact['id']}")
    return href


def test_cost_table_artifact_shows_its_rows(browser, ui_server, rendered, screenshots):
    cost = rendered["artifacts"]["canvas-cost"]
    rows = json.loads(cost["data"])
    stages = [row["stage"] for row in rows]
    assert {"analyze", "generate", "stitch", "check", "upload", "total"} <= set(stages)
    href = open_artifact(browser, ui_server, rendered, "canvas-cost")
    text = open_page(browser, href, ["canvas-cost", cost["description"], "stage\tseconds\tdevice\tamount",
                                     rendered["run_name"], *stages])
    lines = [line.strip() for line in text.splitlines()]
    # every row of the cost log is a row of the table: its stage, seconds and amount, as JavaScript writes them
    cells = browser.evaluate(f"JSON.parse({json.dumps(cost['data'])})"
                             ".map(r => [r.stage, String(r.seconds), String(r.amount)])")
    assert [c[0] for c in cells] == stages
    for stage, seconds, amount in cells:
        assert {stage, seconds, amount} <= set(lines), (stage, seconds, amount, text[:3000])
    keep_screenshot(browser, screenshots, "v2-cost-table")


def test_progress_artifact_shows_the_finished_run(browser, ui_server, rendered, screenshots):
    href = open_artifact(browser, ui_server, rendered, "canvas-progress")
    open_page(browser, href, ["canvas-progress", "Progress: 100%", "stage: manifest", rendered["run_name"]])
    keep_screenshot(browser, screenshots, "v2-progress")


def test_v1_flow_run_page_shows_stages_and_artifacts(browser, ui_server, rendered, screenshots):
    """The V1 UI (still one click away): the run's graph page, its task runs and artifacts tabs."""
    run_id, run_name = rendered["run_id"], rendered["run_name"]
    open_page(browser, f"{ui_server}/runs/flow-run/{run_id}", [run_name, "render_canvas", "Task Runs"])
    keep_screenshot(browser, screenshots, "v1-flow-run")  # the graph, with the two artifacts on it
    assert browser.click_text("Task Runs", "li.p-tab"), "no Task Runs tab"
    browser.wait_for_text([f"({len(STAGE_TASKS)} Completed)", *(f"{t}-" for t in STAGE_TASKS)],
                          timeout=PAGE_TIMEOUT_S)
    assert "tab=Task" in browser.url()
    assert browser.click_text("Artifacts", "li.p-tab"), "no Artifacts tab"
    cost, progress = rendered["artifacts"]["canvas-cost"], rendered["artifacts"]["canvas-progress"]
    text = browser.wait_for_text(["canvas-cost", "canvas-progress", cost["description"], progress["description"]],
                                 timeout=PAGE_TIMEOUT_S)
    assert UI_API_ERROR not in text
    keep_screenshot(browser, screenshots, "v1-flow-run-artifacts")


# --- the operator's own server: `beatframe server start` (what `beatframe canvas` starts) -----------

def test_beatframe_local_server_points_its_ui_at_itself(tmp_path):
    """The UI that `beatframe server start` prints must talk to that same server's API.

    No browser needed: ``/ui-settings`` is where the UI reads the API address it then calls.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_API_", "PREFECT_UI_"))}
    env["BEATFRAME_DATA_DIR"] = str(tmp_path / "data")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "beatframe.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=180)

    record = tmp_path / "data" / "prefect" / "server.json"
    started = cli("server", "start")
    try:
        assert started.returncode == 0, started.stderr[-3000:]
        server = json.loads(record.read_text())
        settings = _get_json(server["url"].removesuffix("/api") + "/ui-settings")
        assert "v2" in settings["available_uis"], settings
        assert settings["api_url"] == server["url"], settings
    finally:
        pid = json.loads(record.read_text())["pid"] if record.exists() else None
        stopped = cli("server", "stop")
        if pid is not None:
            deadline = time.monotonic() + 15
            while group_members(pid) and time.monotonic() < deadline:
                time.sleep(0.2)
            left = group_members(pid)
            for stray in left:  # only what this test's server left behind, by pid
                os.kill(stray, 9)
            assert not left, f"`beatframe server stop` left {left} running: {stopped.stdout} {stopped.stderr}"
