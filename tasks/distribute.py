"""Running a render on the work pool instead of in this flow: the catalog's distributed mode.

Each track becomes a flow run of its deployment (``render_canvas/canvas``, ``render_video/video``),
which any worker of the pool picks up, so the work spreads over every worker there is. A run that
crashes (its worker died: the zombie automation of :mod:`beatframe.cli.deploy` marks a run whose
heartbeats stopped as Crashed) or fails is submitted again by this task's retries, and lands on a
worker that is alive; the render's cached stages make the retry finish what was done already.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

#: Submissions of one render before it counts as failed (the first and two more).
RETRIES = 2
#: Seconds between polls of a submitted run's state.
POLL_SECONDS = 2.0


@task(name="render-on-pool", cache_policy=NO_CACHE, retries=RETRIES, retry_delay_seconds=1,
      task_run_name="render-on-pool-{deployment}")
def render_on_pool(deployment: str, parameters: dict) -> dict:
    """Run ``deployment`` with ``parameters`` on its pool and wait; returns the run's result (the manifest)."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(name=deployment, parameters=parameters, timeout=None, poll_interval=POLL_SECONDS)
    if not flow_run.state.is_completed():
        raise RuntimeError(f"{deployment} run {flow_run.name} ended {flow_run.state.type.value}:"
                           f" {flow_run.state.message or ''}".rstrip(": "))
    return flow_run.state.result()
