"""``beatframe deploy``: a Prefect server made ready for beatframe, then ``prefect deploy``.

``prefect deploy --all`` applies ``prefect.yaml`` by itself once its work pools exist (it does not
create them). ``beatframe deploy`` does the two things around it that an operator would otherwise
do by hand: it creates the process work pools the file names (``cpu``, ``gpu``) when they are
missing, and keeps the automation that turns the flow runs of a dead worker into Crashed runs
(:func:`ensure_zombie_automation`). Then it runs ``prefect --no-prompt deploy`` on the file
(``--all``, or ``--name`` for each chosen deployment) and reports the deployments Prefect applied.

The zombie automation: a flow run sends a heartbeat event every
``PREFECT_FLOWS_HEARTBEAT_FREQUENCY`` seconds (set it on the workers; at least 30), and a run
that goes ``zombie_after`` seconds after a worker took it (Pending), after it started running or
after its last heartbeat without another heartbeat, a start or an end is marked Crashed, so
whoever waits on it (the catalog's distributed mode, :mod:`beatframe.tasks.distribute`) retries it on a
live worker instead of waiting forever. Prefect 3.8.8 has no built-in detection of such runs.

Settings (:mod:`beatframe.infra.settings`): ``PREFECT_API_URL`` (the server),
``BEATFRAME_PROJECT_DIR`` (the checkout the workers run the flows from, baked into the
deployments' pull step; default: the folder of prefect.yaml).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from beatframe.infra.errors import BadInputError
from beatframe.infra.settings import get_settings


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
            # Pending and Running too: the server emits them, so the clock starts even for a run
            # killed before its first heartbeat left the process, or before its process started
            # (a worker holds a run Pending while it starts the process; killed then, the run
            # would wait for a worker forever)
            after={"prefect.flow-run.heartbeat", "prefect.flow-run.Pending", "prefect.flow-run.Running"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Running", "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed", "prefect.flow-run.Cancelled", "prefect.flow-run.Crashed"},
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


def create_work_pools(deployments: list[dict]) -> list[str]:
    """Create the process work pools the deployments name, when missing; returns the new ones."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    created = []
    with get_client(sync_client=True) as client:
        for pool in sorted({d["work_pool"]["name"] for d in deployments}):
            try:
                client.create_work_pool(WorkPoolCreate(name=pool, type="process"))
                created.append(pool)
            except ObjectAlreadyExists:
                pass
    return created


#: how ``prefect deploy`` reports each deployment it applied
_APPLIED = re.compile(r"Deployment '([^']+/[^']+)' successfully (?:created|updated)")


def prefect_deploy(prefect_yaml: Path, *, names: list[str] | None = None, project_dir: Path | None = None,
                   timeout: float = 600) -> list[str]:
    """Run ``prefect --no-prompt deploy`` on ``prefect_yaml`` (every deployment, or ``names``);
    returns ``<flow>/<deployment>`` of each one applied. Prefect's own output is passed on only
    when it fails."""
    prefect_yaml = Path(prefect_yaml).resolve()
    project_dir = Path(project_dir or get_settings().project_dir or prefect_yaml.parent).resolve()
    selection = [arg for name in names for arg in ("--name", name)] if names else ["--all"]
    # wide columns: Prefect prints through rich, which would wrap the lines read back below
    env = {**os.environ, "BEATFRAME_PROJECT_DIR": str(project_dir), "COLUMNS": "500"}
    command = [sys.executable, "-m", "prefect", "--no-prompt", "deploy", *selection,
               "--prefect-file", str(prefect_yaml)]
    try:
        proc = subprocess.run(command, cwd=prefect_yaml.parent, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"prefect deploy did not finish within {timeout:g} s") from None
    applied = _APPLIED.findall(proc.stdout)
    if proc.returncode != 0 or not applied:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"prefect deploy failed (exit code {proc.returncode}):\n{tail}")
    return applied


def deploy_all(prefect_yaml: Path, *, project_dir: Path | None = None, names: list[str] | None = None,
               zombie_after: float = ZOMBIE_AFTER) -> list[str]:
    """The pools and the zombie automation, then ``prefect deploy`` of every deployment of
    ``prefect_yaml`` (only ``names`` when given); returns ``<flow>/<deployment>`` of each one applied."""
    chosen = [d for d in read_deployments(prefect_yaml) if not names or d["name"] in names]
    if names and len(chosen) != len(set(names)):
        known = ", ".join(d["name"] for d in read_deployments(prefect_yaml))
        raise BadInputError(f"no deployment named {sorted(set(names) - {d['name'] for d in chosen})}; known: {known}")
    create_work_pools(chosen)
    ensure_zombie_automation(zombie_after=zombie_after)
    return prefect_deploy(prefect_yaml, names=names, project_dir=project_dir)
