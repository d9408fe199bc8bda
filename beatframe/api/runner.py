"""Runs the renders and analyses requested over HTTP as Prefect flow runs, and keeps their rows in
PostgreSQL in step with them.

Environment (through :class:`beatframe.infra.settings.Settings`): ``BEATFRAME_RENDER_BACKEND`` picks
where renders run, ``BEATFRAME_RENDER_WORKERS`` bounds the in-process runner.

- ``inprocess`` (the default, nothing else to run): a bounded thread pool in the API process calls
  the flows. Their stage reports (:mod:`beatframe.infra.progress`) become the render's ``progress``,
  ``stage`` and ``stages``. Each held render beats a heartbeat; a watchdog in every API process
  fails queued or running renders whose heartbeat went stale (their process died), so none stays
  queued or running forever, also when several API processes share a database.
- ``deployment``: renders are submitted as ``run_deployment`` does to the deployments of
  ``prefect.yaml`` (:data:`DEPLOYMENTS`: ``render_canvas/canvas``, ``render_video/video`` …), which Prefect workers on
  the work pools pick up, on this machine or others. The flow run id is stored at once; a sync
  loop mirrors each flow run's state and its progress artifact, and reads the manifest from the
  flow's persisted result when it completes. Prefect decides liveness: a crashed run fails the
  render; one that no worker picks up stays queued.

Analyses are short (about 0.2 s for three minutes of audio), so both backends run them in-process:
the first after upload, and one for each correction of a track's analysis (a new version, which
only it may store).

Cancelling: a queued render never starts; a running in-process render stops at its next stage
report; a deployment run is set to Cancelling in Prefect, which stops it on its worker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from psycopg.types.json import Jsonb

from beatframe.infra.db import new_id
from beatframe.infra.errors import BadInputError
from beatframe.api.live import PREVIEW_QUALITIES, notify
from beatframe.infra.storage import get_store
from beatframe.api.webhooks import emit

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 30
#: A render whose heartbeat is older than this belongs to a process that died.
STALE_AFTER = "5 minutes"
#: Progress is written at most this often (and on every stage change).
PROGRESS_EVERY_SECONDS = 0.5
SYNC_SECONDS = 2.0
SYNC_BATCH = 200
#: Threads handing renders to Prefect, each with its own client.
SUBMITTERS = 2
#: Attempts to hand a render to a busy Prefect server (waiting 2, 4, 8, 16, 30, 30 … s) before it fails.
SUBMIT_TRIES = 8
#: Each kind of render: its flow (module and function) and its deployment in prefect.yaml.
FLOWS = {"canvas": ("beatframe.flows.canvas", "render_canvas"), "video": ("beatframe.flows.video", "render_video"),
         "generation": ("beatframe.flows.generate", "generate_video"), "edit": ("beatframe.flows.scene_edit", "render_scene_edit"),
         "post": ("beatframe.flows.post", "post_video")}
DEPLOYMENTS = {"canvas": "render_canvas/canvas", "video": "render_video/video", "generation": "generate_video/generate",
               "edit": "render_scene_edit/edit", "post": "post_video/post"}
#: The table of the object each kind of render makes (edits and post-production steps are tasks, as generations).
TARGET_TABLES = {"canvas": "canvases", "video": "videos", "generation": "generations", "edit": "generations",
                 "post": "generations"}
#: The reference API's task event of each render event of a generation.
TASK_EVENTS = {"render.created": "task.created", "render.started": "task.started", "render.progress": "task.progress",
               "render.succeeded": "task.completed", "render.failed": "task.failed", "render.canceled": "task.failed"}


class RenderCanceled(Exception):
    """Raised from a stage report of a render that was canceled while it ran."""


def _flow_module(kind: str):
    import importlib

    return importlib.import_module(FLOWS[kind][0])


def stage_weights(kind: str) -> dict[str, float]:
    return _flow_module(kind).STAGE_WEIGHTS


def initial_stages(kind: str) -> list[dict]:
    return [{"name": name, "status": "pending"} for name in stage_weights(kind)]


def _stages_at(kind: str, current: str | None, *, finished: bool = False) -> list[dict]:
    """Every stage before ``current`` succeeded, ``current`` running, the rest pending."""
    names = list(stage_weights(kind))
    done_until = len(names) if finished else names.index(current) if current in names else 0
    return [{"name": n, "status": "succeeded" if i < done_until else "running" if n == current and not finished
             else "pending"} for i, n in enumerate(names)]


class StageTracker:
    """Turns a flow's (stage, fraction) reports into the render's overall progress, throttled."""

    def __init__(self, kind: str, write) -> None:
        self.kind, self._write = kind, write
        self._weights = stage_weights(kind)
        self._total = float(sum(self._weights.values()))
        self._stage: str | None = None
        self._last = 0.0
        self._lock = threading.Lock()

    def __call__(self, stage: str, fraction: float) -> None:
        if stage not in self._weights:
            return
        names = list(self._weights)
        done = sum(self._weights[n] for n in names[: names.index(stage)])
        overall = min(0.99, (done + self._weights[stage] * max(0.0, min(1.0, fraction))) / self._total)
        with self._lock:
            changed = stage != self._stage
            if not changed and time.monotonic() - self._last < PROGRESS_EVERY_SECONDS:
                return
            self._stage, self._last = stage, time.monotonic()
        self._write(stage, round(overall, 4), _stages_at(self.kind, stage))


def emit_render_event(conn, render_id: str, type: str) -> None:
    """Queue webhook event ``type`` with the render as it is now, in ``conn``'s transaction; for a
    generation's render, the reference API's ``task.*`` event too."""
    from beatframe.api.objects import RENDER_COLUMNS, render_object
    from beatframe.api.reference import generation_event_object

    row = conn.execute(f"SELECT {RENDER_COLUMNS}, canvas_id, video_id, generation_id, project_id"
                       " FROM render_objects WHERE id = %s", (render_id,)).fetchone()
    emit(conn, project_id=row["project_id"], env=row["env"], type=type, obj=render_object(row))
    if row["generation_id"] is not None and type in TASK_EVENTS:
        generation = conn.execute("SELECT id, manifest FROM generations WHERE id = %s",
                                  (row["generation_id"],)).fetchone()
        emit(conn, project_id=row["project_id"], env=row["env"], type=TASK_EVENTS[type],
             obj=generation_event_object(row, generation))


def emit_track_analyzed(conn, track_id: str) -> None:
    from beatframe.api.objects import TRACK_COLUMNS, track_object

    row = conn.execute(f"SELECT {TRACK_COLUMNS}, project_id FROM tracks WHERE id = %s", (track_id,)).fetchone()
    emit(conn, project_id=row["project_id"], env=row["env"], type="track.analyzed", obj=track_object(row))


class RenderBook:
    """The render rows: every state change a backend makes goes through here, with its webhook
    event and its live event (:mod:`beatframe.api.live`) in the same transaction."""

    def __init__(self, pool, store) -> None:
        self.pool, self.store = pool, store
        self._announced: dict[str, set[str]] = {}
        self._announced_lock = threading.Lock()

    def announce_previews(self, render_id: str, prefix: str | None) -> None:
        """Publish ``frame_available`` for each preview the flow uploaded under ``prefix`` since last time."""
        if not prefix:
            return
        with self._announced_lock:
            seen = self._announced.setdefault(render_id, set())
            new = [q for q in PREVIEW_QUALITIES if q not in seen]
        new = [q for q in new if self.store.exists(f"{prefix}/{q}.jpg")]
        if not new:
            return
        with self.pool.connection() as conn:
            for quality in new:
                notify(conn, render_id, {"type": "frame_available", "quality": quality, "key": f"{prefix}/{quality}.jpg"})
        with self._announced_lock:
            seen.update(new)

    def _forget(self, render_id: str) -> None:
        with self._announced_lock:
            self._announced.pop(render_id, None)

    def start(self, render_id: str, flow_run_id: str | None = None) -> bool:
        """queued -> running; False when the render is no longer queued (canceled)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE renders SET status = 'running', started_at = coalesce(started_at, now()),"
                " heartbeat_at = now(), flow_run_id = coalesce(%s, flow_run_id) WHERE id = %s AND status = 'queued'"
                " RETURNING id", (flow_run_id, render_id)).fetchone()
            if row is not None:
                emit_render_event(conn, render_id, "render.started")
                notify(conn, render_id, {"type": "progress", "progress": 0.0, "stage": None})
        return row is not None

    def progress(self, render_id: str, stage: str | None, progress: float, stages: list[dict],
                 flow_run_id: str | None = None) -> bool:
        """Record progress; False when the render stopped running (it was canceled)."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE renders r SET stage = %s, progress = greatest(r.progress, %s), stages = %s, heartbeat_at = now(),"
                " flow_run_id = coalesce(%s, r.flow_run_id)"
                " FROM (SELECT id, stage FROM renders WHERE id = %s FOR UPDATE) before"
                " WHERE r.id = before.id AND r.status = 'running' RETURNING before.stage AS previous_stage",
                (stage, progress, Jsonb(stages), flow_run_id, render_id)).fetchone()
            if row is not None and row["previous_stage"] != stage:  # one event per stage, not per report
                emit_render_event(conn, render_id, "render.progress")
                notify(conn, render_id, {"type": "stage", "stage": stage})
            if row is not None:
                notify(conn, render_id, {"type": "progress", "progress": progress, "stage": stage})
        return row is not None

    def succeed(self, render_id: str, manifest: dict, flow_run_id: str | None) -> None:
        """Store the manifest on the canvas or video, finish the render and log its usage."""
        with self.pool.connection() as conn:
            render = conn.execute(
                "UPDATE renders SET status = 'succeeded', progress = 1, stage = NULL, stages = %s, finished_at = now(),"
                " heartbeat_at = now(), flow_run_id = coalesce(%s, flow_run_id), cost = %s"
                " WHERE id = %s AND status IN ('queued', 'running') RETURNING project_id, env, kind",
                (Jsonb(_stages_at(manifest["kind"], None, finished=True)), flow_run_id, Jsonb(manifest["cost"]),
                 render_id)).fetchone()
            self._forget(render_id)
            if render is None:
                return  # canceled meanwhile: the outputs exist, but the render stays canceled
            notify(conn, render_id, {"type": "complete", "status": "succeeded"})
            target = conn.execute(f"UPDATE {TARGET_TABLES[render['kind']]} SET manifest = %s WHERE render_id = %s"
                                  " RETURNING id", (Jsonb(manifest), render_id)).fetchone()
            emit_render_event(conn, render_id, "render.succeeded")
            if render["kind"] in ("canvas", "video"):  # a task's completion is its task.completed
                emit(conn, project_id=render["project_id"], env=render["env"], type=f"{render['kind']}.completed",
                     obj={"id": target["id"], "object": render["kind"], "render": render_id,
                          "outputs": [{k: o[k] for k in ("role", "uri", "sha256", "bytes")}
                                      for o in manifest["outputs"]]})
            billed = render["env"] == "live"  # test-mode renders are priced, never billed
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO usage_lines (id, project_id, env, object_id, stage, seconds, device, amount, currency,"
                    " billed_amount) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [(new_id("usg"), render["project_id"], render["env"], target["id"], line["stage"],
                      line["seconds"], line["device"], line["amount"], manifest["cost"]["currency"],
                      line["amount"] if billed else 0) for line in manifest["cost"]["lines"]])

    def fail(self, render_id: str, exc: BaseException | str, flow_run_id: str | None = None) -> None:
        bad_input = isinstance(exc, BadInputError)
        error = {"type": "invalid_request_error" if bad_input else "api_error",
                 "code": "bad_input" if bad_input else "render_failed", "message": str(exc)}
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE renders SET status = 'failed', error = %s, finished_at = now(), heartbeat_at = now(),"
                " flow_run_id = coalesce(%s, flow_run_id) WHERE id = %s AND status IN ('queued', 'running') RETURNING id",
                (Jsonb(error), flow_run_id, render_id)).fetchone()
            if row is not None:
                emit_render_event(conn, render_id, "render.failed")
                notify(conn, render_id, {"type": "error", "error": error})
        self._forget(render_id)

    def mark_canceled(self, render_id: str) -> dict | None:
        """queued|running -> canceled; the render's row, or None when it had already finished."""
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE renders SET status = 'canceled', stage = NULL, finished_at = now() WHERE id = %s"
                " AND status IN ('queued', 'running') RETURNING id, backend, flow_run_id", (render_id,)).fetchone()
            if row is not None:
                emit_render_event(conn, render_id, "render.canceled")
                notify(conn, render_id, {"type": "error", "error": {"type": "invalid_request_error",
                                                                     "code": "render_canceled",
                                                                     "message": "the render was canceled"}})
        self._forget(render_id)
        return row

    def fail_orphans(self) -> int:
        """Fail renders whose process died: in-process ones with a stale heartbeat, and deployment
        ones that never reached Prefect."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "UPDATE renders SET status = 'failed', finished_at = now(), error = %s"
                " WHERE status IN ('queued', 'running')"
                " AND (backend = 'inprocess' OR flow_run_id IS NULL)"
                f" AND coalesce(heartbeat_at, created_at) < now() - interval '{STALE_AFTER}' RETURNING id",
                (Jsonb({"type": "api_error", "code": "runner_lost",
                        "message": "the process running this render stopped; create it again"}),),
            ).fetchall()
            for row in rows:
                emit_render_event(conn, row["id"], "render.failed")
                notify(conn, row["id"], {"type": "error", "error": {"type": "api_error", "code": "runner_lost",
                                                                     "message": "the process running this render stopped"}})
        return len(rows)


class RenderRunner:
    """What the API calls: submit renders and analyses, cancel renders, shut down."""

    backend = "inprocess"

    def __init__(self, *, pool, settings) -> None:
        self.pool, self.settings = pool, settings
        self.book = RenderBook(pool, get_store(settings))
        self._executor = ThreadPoolExecutor(max_workers=settings.render_workers, thread_name_prefix="render")
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, name="render-watchdog", daemon=True)]

    def start(self) -> "RenderRunner":
        self.book.fail_orphans()
        for thread in self._threads:
            thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                with self._held_lock:
                    held = list(self._held)
                if held:
                    with self.pool.connection() as conn:
                        conn.execute("UPDATE renders SET heartbeat_at = now() WHERE id = ANY(%s)", (held,))
                self.book.fail_orphans()
            except Exception:  # noqa: BLE001 - a missed beat is retried on the next one
                log.warning("render heartbeat failed", exc_info=True)

    def shutdown(self) -> None:
        """Stop taking work and let what is running finish (queued renders stay queued; another
        process's watchdog fails them if nobody picks them up)."""
        self._stop.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    # --- renders

    def submit(self, *, render_id: str, kind: str, flow_params: dict) -> None:
        with self._held_lock:
            self._held.add(render_id)
        self._executor.submit(self._run, render_id, kind, flow_params)

    def cancel(self, render_id: str) -> dict | None:
        return self.book.mark_canceled(render_id)

    def _run(self, render_id: str, kind: str, flow_params: dict) -> None:
        from beatframe.infra.progress import reporting

        try:
            if not self.book.start(render_id):
                return  # canceled before it started

            last_stage: list[str] = []

            def write(stage: str, progress: float, stages: list[dict]) -> None:
                if not self.book.progress(render_id, stage, progress, stages, _current_flow_run_id()):
                    raise RenderCanceled(f"render {render_id} was canceled")
                if last_stage != [stage]:  # previews appear as a stage ends: look once per stage, not per report
                    last_stage[:] = [stage]
                    self.book.announce_previews(render_id, flow_params.get("previews"))

            with reporting(StageTracker(kind, write)):
                state = _flow(kind)(**flow_params, return_state=True)
            flow_run_id = str(state.state_details.flow_run_id)
            try:
                manifest = state.result()
            except Exception as exc:  # noqa: BLE001 - the render fails, the runner goes on
                if not isinstance(exc, (BadInputError, RenderCanceled)):
                    log.warning("render %s failed", render_id, exc_info=True)
                self.book.fail(render_id, exc, flow_run_id)
                return
            self.book.announce_previews(render_id, flow_params.get("previews"))
            self.book.succeed(render_id, manifest, flow_run_id)
        except Exception as exc:  # noqa: BLE001 - the render fails, the runner goes on
            log.exception("render %s failed", render_id)
            self.book.fail(render_id, exc)
        finally:
            with self._held_lock:
                self._held.discard(render_id)

    # --- analyses

    def submit_analysis(self, *, track_id: str, audio: str, hints: dict | None = None, version: int = 1) -> None:
        """Analyse a track (version ``version`` of its analysis, applying the canonical corrections
        ``hints``) and store the result while that version is still the track's."""
        self._executor.submit(self._run_analysis, track_id, audio, hints, version)

    def _run_analysis(self, track_id: str, audio: str, hints: dict | None = None, version: int = 1) -> None:
        from beatframe.flows.analyze import analyze_track

        try:
            analysis = analyze_track(audio=audio, analysis_hints=hints)
            with self.pool.connection() as conn:
                # a newer correction made meanwhile wins: this result is no longer the track's
                stored = conn.execute("UPDATE tracks SET analysis = %s, analysis_status = 'succeeded',"
                                      " analysis_error = NULL WHERE id = %s AND analysis_version = %s RETURNING id",
                                      (Jsonb(analysis), track_id, version)).fetchone()
                if stored is not None:
                    emit_track_analyzed(conn, track_id)
        except Exception as exc:  # noqa: BLE001 - the analysis fails, the runner goes on
            log.warning("analysis of %s failed", track_id, exc_info=not isinstance(exc, BadInputError))
            with self.pool.connection() as conn:
                stored = conn.execute("UPDATE tracks SET analysis_status = 'failed', analysis_error = %s"
                                      " WHERE id = %s AND analysis_version = %s RETURNING id",
                                      (Jsonb({"type": "api_error", "code": "analysis_failed", "message": str(exc)}),
                                       track_id, version)).fetchone()
                if stored is not None:
                    emit_track_analyzed(conn, track_id)


class DeploymentRunner(RenderRunner):
    """Renders go to Prefect work pools; analyses still run in this process."""

    backend = "deployment"

    def __init__(self, *, pool, settings) -> None:
        super().__init__(pool=pool, settings=settings)
        self._submissions: queue.Queue = queue.Queue()
        self._threads += [threading.Thread(target=self._submit_loop, name=f"render-submit-{i}", daemon=True)
                          for i in range(SUBMITTERS)]
        self._threads.append(threading.Thread(target=self._sync_loop, name="render-sync", daemon=True))

    def submit(self, *, render_id: str, kind: str, flow_params: dict) -> None:
        # Off the request path: POST answers after its INSERT, not after a round trip to Prefect.
        self._submissions.put((render_id, kind, flow_params, 1))

    def _submit_loop(self) -> None:
        """Hand queued renders to Prefect: what ``run_deployment(..., timeout=0)`` does, on one
        long-lived client per thread and with the deployment ids cached, so a submission is one
        API call (``run_deployment`` opens a client and looks the deployment up every time, which
        under load costs the API process more than the requests it serves)."""
        from prefect import get_client
        from prefect.exceptions import ObjectNotFound

        deployment_ids: dict[str, object] = {}
        with get_client(sync_client=True) as client:
            while not self._stop.is_set():
                try:
                    render_id, kind, flow_params, tries = self._submissions.get(timeout=0.5)
                except queue.Empty:
                    continue
                name = DEPLOYMENTS[kind]
                try:
                    for attempt in (1, 2):
                        if name not in deployment_ids:
                            deployment_ids[name] = client.read_deployment_by_name(name).id
                        try:
                            flow_run = client.create_flow_run_from_deployment(
                                deployment_ids[name], parameters=flow_params, tags=["beatframe-api", render_id],
                                idempotency_key=render_id)  # a resubmitted render is still one flow run
                            break
                        except ObjectNotFound:
                            deployment_ids.pop(name)  # re-created under a new id: look it up again
                            if attempt == 2:
                                raise
                    with self.pool.connection() as conn:
                        conn.execute("UPDATE renders SET flow_run_id = %s, heartbeat_at = now() WHERE id = %s",
                                     (str(flow_run.id), render_id))
                except Exception as exc:  # noqa: BLE001 - e.g. no such deployment: the render fails, clearly
                    if _prefect_busy(exc) and tries < SUBMIT_TRIES:
                        # an overloaded or restarting server: try again later (the idempotency key
                        # makes an attempt that did reach Prefect count once)
                        log.info("Prefect is busy (%s); render %s is submitted again", exc, render_id)
                        self._stop.wait(min(30.0, 2.0 ** tries))
                        self._submissions.put((render_id, kind, flow_params, tries + 1))
                        continue
                    log.warning("submitting render %s failed", render_id, exc_info=True)
                    self.book.fail(render_id, f"could not submit to Prefect deployment {name!r}: {exc}")

    def cancel(self, render_id: str) -> dict | None:
        row = self.book.mark_canceled(render_id)
        if row is not None and row["flow_run_id"]:
            from prefect import get_client
            from prefect.states import Cancelling

            with get_client(sync_client=True) as client:
                client.set_flow_run_state(row["flow_run_id"], Cancelling(), force=True)
        return row

    def _sync_loop(self) -> None:
        while not self._stop.wait(SYNC_SECONDS):
            try:
                self.sync()
            except Exception:  # noqa: BLE001 - Prefect briefly unreachable: try again next round
                log.warning("syncing renders with Prefect failed", exc_info=True)

    def sync(self) -> None:
        """Mirror the Prefect state of every active deployment render that left the queue.

        One filtered API call per batch; flow runs still scheduled or pending are filtered out by
        the server and parsed by nobody, so a long queue costs the API process next to nothing.
        """
        from prefect import get_client

        with self.pool.connection() as conn:
            active = conn.execute(
                "SELECT id, kind, status, flow_run_id FROM renders WHERE backend = 'deployment'"
                " AND status IN ('queued', 'running') AND flow_run_id IS NOT NULL ORDER BY created_at").fetchall()
        with get_client(sync_client=True) as client:
            for start in range(0, len(active), SYNC_BATCH):
                batch = {r["flow_run_id"]: r for r in active[start:start + SYNC_BATCH]}
                # the REST filter directly: plain dicts, and runs not yet taken by a worker left out server-side
                response = client.request("POST", "/flow_runs/filter", json={
                    "flow_runs": {"id": {"any_": list(batch)},
                                  "state": {"type": {"not_any_": ["SCHEDULED", "PENDING"]}}},
                    "limit": len(batch)})
                for found in response.json():
                    self._mirror(client, batch[found["id"]], found)

    def _mirror(self, client, render: dict, flow_run: dict) -> None:
        state, flow_run_id = flow_run.get("state") or {}, flow_run["id"]
        kind = state.get("type")
        if kind == "RUNNING":
            if render["status"] == "queued":
                self.book.start(render["id"], flow_run_id)
            stage, progress = _artifact_progress(client, flow_run_id)
            if stage is not None:
                self.book.progress(render["id"], stage, progress, _stages_at(render["kind"], stage))
            self.book.announce_previews(render["id"], (flow_run.get("parameters") or {}).get("previews"))
        elif kind == "COMPLETED":
            from prefect.client.schemas.objects import FlowRun

            manifest = FlowRun.model_validate(flow_run).state.result()  # the flow's persisted result
            self.book.announce_previews(render["id"], (flow_run.get("parameters") or {}).get("previews"))
            self.book.succeed(render["id"], manifest, flow_run_id)
        elif kind in ("CANCELLED", "CANCELLING"):
            self.book.mark_canceled(render["id"])
        elif kind in ("FAILED", "CRASHED"):
            self.book.fail(render["id"], state.get("message") or state.get("name") or kind, flow_run_id)


def _prefect_busy(exc: Exception) -> bool:
    """Whether submitting failed for a passing reason: Prefect unreachable, timing out or 5xx."""
    import httpx
    from prefect.exceptions import PrefectHTTPStatusError

    if isinstance(exc, PrefectHTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


def _artifact_progress(client, flow_run_id: str) -> tuple[str | None, float]:
    """The stage and fraction of a flow run's progress artifact (``stage: <name>``, percent)."""
    response = client.request("POST", "/artifacts/filter", json={
        "artifacts": {"flow_run_id": {"any_": [flow_run_id]}, "type": {"any_": ["progress"]}},
        "sort": "CREATED_DESC", "limit": 1})
    found = response.json()
    if not found:
        return None, 0.0
    description = found[0].get("description") or ""
    stage = description.removeprefix("stage: ").strip() or None
    return stage, min(0.99, float(found[0].get("data") or 0.0) / 100.0)


def _current_flow_run_id() -> str | None:
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    return str(context.flow_run.id) if context and context.flow_run else None


def _flow(kind: str):
    return getattr(_flow_module(kind), FLOWS[kind][1])


def make_runner(*, pool, settings) -> RenderRunner:
    """The runner ``BEATFRAME_RENDER_BACKEND`` asks for, started."""
    if settings.render_backend == "deployment":
        return DeploymentRunner(pool=pool, settings=settings).start()
    return RenderRunner(pool=pool, settings=settings).start()
