"""prefect.yaml parses and every deployment's entrypoint is an importable flow with its parameters."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from prefect import Flow

# slow: renders songs or runs real servers (`pytest -m 'not slow'` is the quick set)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]


def deployments_and_flows() -> list[tuple[dict, object]]:
    """Each deployment of prefect.yaml with the object its entrypoint names."""
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    found = []
    for deployment in config["deployments"]:
        module, name = deployment["entrypoint"].split(":")
        # module paths of the installed package, so images need no source tree beside prefect.yaml
        assert not module.endswith(".py") and module.startswith("beatframe.flows."), deployment["entrypoint"]
        found.append((deployment, getattr(importlib.import_module(module), name)))
    return found


def test_every_entrypoint_is_a_flow_taking_its_parameters():
    found = deployments_and_flows()
    assert found
    for deployment, flow in found:
        assert isinstance(flow, Flow), deployment["entrypoint"]
        accepted = set(inspect.signature(flow.fn).parameters)
        assert set(deployment.get("parameters", {})) <= accepted, deployment["name"]
        assert deployment["work_pool"]["name"]


def test_every_deployment_the_api_submits_to_is_declared():
    from beatframe.api.runner import DEPLOYMENTS

    declared = {f"{flow.name}/{deployment['name']}" for deployment, flow in deployments_and_flows()}
    assert set(DEPLOYMENTS.values()) <= declared


def test_pools_schedules_and_gpu_deployments():
    from prefect.client.schemas.schedules import CronSchedule

    found = deployments_and_flows()
    pools = {deployment["work_pool"]["name"] for deployment, _ in found}
    assert pools == {"cpu", "gpu"}
    gpu = [d for d, _ in found if d["work_pool"]["name"] == "gpu"]
    assert {d["name"] for d in gpu} == {"canvas-gpu", "video-gpu", "generate-gpu"}
    catalog = next(d for d, _ in found if d["name"] == "catalog")
    (schedule,) = catalog["schedules"]
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # a valid cron string and zone
    assert set(schedule["parameters"]) <= set(inspect.signature(dict(
        (d["name"], f) for d, f in found)["catalog"].fn).parameters)


def test_prefect_deploy_all_applies_every_deployment(prefect_server):
    """The operator's way: the pools exist, then `prefect deploy --all` from the repository root."""
    import os
    import subprocess
    import sys

    from prefect.client.orchestration import get_client

    from beatframe.cli.deploy import create_work_pools

    create_work_pools([d for d, _ in deployments_and_flows()])
    env = {k: v for k, v in os.environ.items() if k != "BEATFRAME_PROJECT_DIR"}
    proc = subprocess.run([sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    with get_client(sync_client=True) as client:
        assert {client.read_work_pool(name).type for name in ("cpu", "gpu")} == {"process"}
        for deployment, flow in deployments_and_flows():
            applied = client.read_deployment_by_name(f"{flow.name}/{deployment['name']}")
            assert applied.work_pool_name == deployment["work_pool"]["name"]
            assert applied.parameters == deployment.get("parameters", {})
        catalog = client.read_deployment_by_name("render_catalog/catalog")
        (schedule,) = catalog.schedules
        assert schedule.schedule.cron == "0 3 * * *" and not schedule.active
        assert schedule.parameters["kind"] == "both"
        # without BEATFRAME_PROJECT_DIR when deploying, each worker resolves its own at run time
        assert catalog.pull_steps == [{"prefect.deployments.steps.set_working_directory": {
            "directory": "{{ $BEATFRAME_PROJECT_DIR }}"}}]


def test_beatframe_deploy_creates_the_pools_and_the_dead_worker_automation(prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    from beatframe.cli.deploy import ZOMBIE_AUTOMATION, deploy_all

    with get_client(sync_client=True) as client:
        try:
            client.delete_work_pool("gpu")
        except ObjectNotFound:
            pass
    assert deploy_all(ROOT / "prefect.yaml", names=["canvas-gpu"], zombie_after=60) == ["render_canvas/canvas-gpu"]
    with get_client(sync_client=True) as client:
        assert client.read_work_pool("gpu").type == "process"
        applied = client.read_deployment_by_name("render_canvas/canvas-gpu")
        assert applied.work_pool_name == "gpu"
        assert applied.pull_steps == [{"prefect.deployments.steps.set_working_directory": {"directory": str(ROOT)}}]
        (automation,) = client.read_automations_by_name(ZOMBIE_AUTOMATION)
        assert automation.trigger.within.total_seconds() == 60


def test_beatframe_deploy_bad_input_exits_2(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    for extra_env, args, says in (({}, [], "PREFECT_API_URL"),
                                  ({"PREFECT_API_URL": "http://127.0.0.1:9/api"}, ["--prefect-yaml", "nope.yaml"],
                                   "cannot be read")):
        proc = subprocess.run([sys.executable, "-m", "beatframe.cli", "deploy", *args], cwd=tmp_path,
                              env={**env, **extra_env}, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
