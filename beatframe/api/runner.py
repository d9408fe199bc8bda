"""Runs renders requested over HTTP: a bounded in-process runner around the Prefect flows.

Each render row goes queued -> running -> succeeded | failed; the flow run id, cost lines, the
manifest and any error are written back to PostgreSQL. Every runner beats a heartbeat on the renders
it holds; a watchdog in every API process fails renders whose heartbeat went stale (their process
died), so none is left queued or running forever, also when several API processes share a database. Scaling out to Prefect work pools
(``run_deployment``) comes with the operations work.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from psycopg.types.json import Jsonb

from beatframe.errors import BadInputError

log = logging.getLogger(__name__)
#: Renders at once in one API process; each render already keeps both cores busy.
MAX_PARALLEL_RENDERS = 2
HEARTBEAT_SECONDS = 30
#: A render whose heartbeat is older than this belongs to a process that died.
STALE_AFTER = "5 minutes"


class RenderRunner:
    def __init__(self, *, pool, store, settings, workers: int = MAX_PARALLEL_RENDERS) -> None:
        self.pool, self.store, self.settings = pool, store, settings
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="render")
        self._held: set[str] = set()
        self._held_lock = threading.Lock()
        self._stop = threading.Event()
        self._watchdog = threading.Thread(target=self._beat, name="render-heartbeat", daemon=True)
        self._watchdog.start()

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            try:
                with self._held_lock:
                    held = list(self._held)
                if held:
                    with self.pool.connection() as conn:
                        conn.execute("UPDATE renders SET heartbeat_at = now() WHERE id = ANY(%s)", (held,))
                self.fail_orphans()
            except Exception:  # noqa: BLE001 - a missed beat is retried on the next one
                log.warning("render heartbeat failed", exc_info=True)

    def fail_orphans(self) -> int:
        """Fail queued or running renders whose heartbeat went stale: their process died."""
        with self.pool.connection() as conn:
            rows = conn.execute(
                "UPDATE renders SET status = 'failed', finished_at = now(), error = %s"
                " WHERE status IN ('queued', 'running')"
                f" AND coalesce(heartbeat_at, created_at) < now() - interval '{STALE_AFTER}' RETURNING id",
                (Jsonb({"type": "api_error", "code": "runner_lost",
                        "message": "the process running this render stopped; create it again"}),),
            ).fetchall()
        return len(rows)

    def submit_canvas(self, *, render_id: str, canvas_id: str, object_key: str, suffix: str, params: dict) -> None:
        with self._held_lock:
            self._held.add(render_id)
        self._executor.submit(self._run_canvas, render_id, canvas_id, object_key, suffix, params)

    def submit_analysis(self, *, track_id: str, object_key: str, suffix: str, sha256: str) -> None:
        self._executor.submit(self._run_analysis, track_id, object_key, suffix, sha256)

    def _run_analysis(self, track_id: str, object_key: str, suffix: str, sha256: str) -> None:
        from flows.analyze import analyze_track

        try:
            analysis = analyze_track(audio=str(self._audio(object_key, suffix, sha256)))
            with self.pool.connection() as conn:
                conn.execute("UPDATE tracks SET analysis = %s, analysis_status = 'succeeded' WHERE id = %s",
                             (Jsonb(analysis), track_id))
        except Exception as exc:  # noqa: BLE001 - the analysis fails, the runner goes on
            log.warning("analysis of %s failed", track_id, exc_info=not isinstance(exc, BadInputError))
            with self.pool.connection() as conn:
                conn.execute("UPDATE tracks SET analysis_status = 'failed', analysis_error = %s WHERE id = %s",
                             (Jsonb({"type": "api_error", "code": "analysis_failed", "message": str(exc)}),
                              track_id))

    def shutdown(self) -> None:
        """Stop taking work and let what is running finish (queued renders stay queued; another
        process's watchdog fails them if nobody picks them up)."""
        self._stop.set()
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _audio(self, object_key: str, suffix: str, sha256: str) -> Path:
        """The track's audio as a local file (fetched once from object storage)."""
        path = self.settings.cache_dir / "tracks" / f"{sha256}{suffix}"
        if not path.exists():
            self.store.get_file(object_key, path)
        return path

    def _run_canvas(self, render_id: str, canvas_id: str, object_key: str, suffix: str, params: dict) -> None:
        from flows.canvas import render_canvas

        try:
            self._render_canvas(render_canvas, render_id, canvas_id, object_key, suffix, params)
        finally:
            with self._held_lock:
                self._held.discard(render_id)

    def _render_canvas(self, render_canvas, render_id: str, canvas_id: str, object_key: str, suffix: str,
                       params: dict) -> None:
        try:
            with self.pool.connection() as conn:
                status = conn.execute("SELECT status FROM renders WHERE id = %s", (render_id,)).fetchone()["status"]
                if status != "queued":
                    return  # canceled before it started
                conn.execute("UPDATE renders SET status = 'running', started_at = now(), heartbeat_at = now()"
                             " WHERE id = %s", (render_id,))
            audio = self._audio(object_key, suffix, params["sha256"])
            out = self.settings.data_dir / "renders" / render_id
            state = render_canvas(audio=str(audio), out_dir=str(out), template=params["template"],
                                  seconds=params["seconds"], seed=params["seed"], loop=params["loop"],
                                  return_state=True)
            flow_run_id = str(state.state_details.flow_run_id)
            manifest = state.result()
            with self.pool.connection() as conn:
                conn.execute("UPDATE canvases SET manifest = %s WHERE id = %s", (Jsonb(manifest), canvas_id))
                conn.execute(
                    "UPDATE renders SET status = 'succeeded', progress = 1, finished_at = now(), heartbeat_at = now(),"
                    " flow_run_id = %s, cost = %s, stages = %s WHERE id = %s",
                    (flow_run_id, Jsonb(manifest["cost"]), Jsonb([line["stage"] for line in manifest["cost"]["lines"]]),
                     render_id))
        except Exception as exc:  # noqa: BLE001 - the render fails, the runner goes on
            code = "bad_input" if isinstance(exc, BadInputError) else "render_failed"
            if code == "render_failed":
                log.exception("render %s failed", render_id)
            error = {"type": "invalid_request_error" if code == "bad_input" else "api_error", "code": code,
                     "message": str(exc)}
            with self.pool.connection() as conn:
                conn.execute("UPDATE renders SET status = 'failed', error = %s, finished_at = now(),"
                             " heartbeat_at = now() WHERE id = %s", (Jsonb(error), render_id))
