"""prefect.yaml parses and every deployment's entrypoint is an importable flow with its parameters."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[1]


def deployments_and_flows() -> list[tuple[dict, object]]:
    """Each deployment of prefect.yaml with the object its entrypoint names."""
    config = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    found = []
    for deployment in config["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        spec = importlib.util.spec_from_file_location(f"entry_{deployment['name']}", ROOT / path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        found.append((deployment, getattr(module, name)))
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
