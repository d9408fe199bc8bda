"""``beatframe deploy``: the deployments of ``prefect.yaml`` applied to the Prefect server through
Prefect's Python API, with their work pools created when missing.

``prefect deploy --all`` is the usual way, but in Prefect 3.8.8 it fails after the first
deployment: it asks the server for the pool's online workers with null paging fields that the
server's own schema refuses (HTTP 422, ``work_pools/<pool>/workers/filter``). This applies the
same file — entrypoints, parameters, tags, pools and schedules — with ``Flow.from_source(...)
.to_deployment(...).apply()``, which does not make that call. Workers run the flows from
``project_dir`` (``BEATFRAME_PROJECT_DIR`` on the worker, as prefect.yaml's pull step says).

It also keeps the automation that turns the flow runs of a dead worker into Crashed runs
(:func:`ensure_zombie_automation`): a flow run sends a heartbeat event every
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (set it on the workers; at least 30), and a run
whose heartbeats stop for ``zombie_after`` seconds without it finishing is marked Crashed, so
whoever waits on it (the catalog's distributed mode, :mod:`tasks.distribute`) retries it on a
live worker instead of waiting forever. Prefect 3.8.8 has no built-in detection of such runs.

Environment: ``PREFECT_API_URL`` (the server), ``BEATFRAME_PROJECT_DIR`` (default: the folder of
prefect.yaml).
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from beatframe.errors import BadInputError


def read_deployments(prefect_yaml: Path) -> list[dict]:
    try:
        config = yaml.safe_load(Path(prefect_yaml).read_text())
    except OSError as exc:
        raise BadInputError(f"{prefect_yaml} cannot be read ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"{prefect_yaml} is not valid YAML ({str(exc).splitlines()[0]})") from None
    deployments = (config or {}).get("deployments")
    if not deployments:
        raise BadInputError(f"{prefect_yaml} declares no deployments")
    return deployments


ZOMBIE_AUTOMATION = "beatframe: crash flow runs whose heartbeats stopped"
#: Seconds without a heartbeat after which a running flow run counts as crashed (3 missed beats
#: at the fastest heartbeat Prefect allows, 30 s).
ZOMBIE_AFTER = 90


def ensure_zombie_automation(*, zombie_after: float = ZOMBIE_AFTER) -> None:
    """Create (or update) the automation that marks flow runs Crashed when their heartbeats stop."""
    from datetime import timedelta

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    automation = AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="A flow run that stopped sending heartbeats without finishing lost its worker.",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                    "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
            match={"prefect.resource.id": ["prefect.flow-run.*"]}, for_each={"prefect.resource.id"},
            posture=Posture.Proactive, threshold=1, within=timedelta(seconds=zombie_after)),
        actions=[ChangeFlowRunState(state=StateType.CRASHED,
                                    message=f"no heartbeat for {zombie_after:g} s: its worker stopped")])
    with get_client(sync_client=True) as client:
        existing = client.read_automations_by_name(ZOMBIE_AUTOMATION)
        if existing:
            client.update_automation(existing[0].id, automation)
        else:
            client.create_automation(automation)


def deploy_all(prefect_yaml: Path, *, project_dir: Path | None = None, names: list[str] | None = None,
               zombie_after: float = ZOMBIE_AFTER) -> list[str]:
    """Apply the deployments of ``prefect_yaml`` (only ``names`` when given), creating their process
    work pools when missing and the zombie automation; returns ``<flow>/<deployment>`` of each one
    applied."""
    from prefect import Flow
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.schedules import Cron

    prefect_yaml = Path(prefect_yaml).resolve()
    project_dir = Path(project_dir or os.environ.get("BEATFRAME_PROJECT_DIR") or prefect_yaml.parent).resolve()
    chosen = [d for d in read_deployments(prefect_yaml) if not names or d["name"] in names]
    if names and len(chosen) != len(set(names)):
        known = ", ".join(d["name"] for d in read_deployments(prefect_yaml))
        raise BadInputError(f"no deployment named {sorted(set(names) - {d['name'] for d in chosen})}; known: {known}")
    with get_client(sync_client=True) as client:
        for pool in sorted({d["work_pool"]["name"] for d in chosen}):
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
            except ObjectAlreadyExists:
                pass
    ensure_zombie_automation(zombie_after=zombie_after)
    applied = []
    for deployment in chosen:
        flow = Flow.from_source(source=str(project_dir), entrypoint=deployment["entrypoint"])
        schedules = [Cron(s["cron"], timezone=s.get("timezone"), active=s.get("active", True),
                          parameters=s.get("parameters") or {}) for s in deployment.get("schedules") or []]
        flow.to_deployment(name=deployment["name"], work_pool_name=deployment["work_pool"]["name"],
                           parameters=deployment.get("parameters") or {}, tags=deployment.get("tags") or [],
                           description=deployment.get("description"), schedules=schedules or None).apply()
        applied.append(f"{flow.name}/{deployment['name']}")
    return applied
