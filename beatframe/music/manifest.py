"""Building and publishing the render manifest (schema ``beatframe.manifest/1``).

:func:`build_manifest` assembles the record of a render: source, segment, plan, loop, outputs,
checks, cost log, licensing and provenance. :func:`publish` copies the checked outputs
into the user's folder atomically, the manifest last, so a folder with a manifest is complete.
:func:`licence_entry` is the licensing record of one input (a cover, a scene's image, a reference
image, a source clip), as manifests and post-production records list them.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path

from beatframe import __version__
from beatframe.infra.cachekeys import cache_key
from beatframe.infra.errors import BadInputError
from beatframe.infra.fsutil import atomic_path, write_json_atomic
from beatframe.music.schemas import (
    Cost, GeneratorInfo, Licensing, LoopInfo, Manifest, OutputRecord, Plan, Provenance, ShotPlan,
    Source, Span, TemplateRef,
)


#: what a licensing entry says of an input whose licence nobody declared
UNDECLARED = "unspecified (the user declared none)"


def declared_licence(declared: str | dict | None) -> dict:
    """The fields a licensing entry takes from a declared licence: a licence name, a JSON licence
    record or the record itself (an API asset's licence, attribution, rights holder and id; a
    rendered clip's whole licensing), copied in whole; :data:`UNDECLARED` where none says one."""
    if isinstance(declared, str) and declared.lstrip().startswith("{"):
        try:
            declared = json.loads(declared)
        except (json.JSONDecodeError, RecursionError):
            raise BadInputError("a licence is a name (CC-BY-4.0) or a JSON object; this one is "
                                "neither") from None
    if isinstance(declared, dict):
        return {"license": UNDECLARED, **declared}
    return {"license": declared or UNDECLARED}


def licence_entry(*, role: str, uri: str, sha256: str | None, declared: str | dict | None) -> dict:
    """The licensing entry of one input a render used: its ``role``, content hash, declared
    licence (:func:`declared_licence`) and where it came from (``source``)."""
    # the declared fields come first: a declared record never overrides what the render measured
    return {**declared_licence(declared), "role": role, "sha256": sha256, "source": uri}


def media_record(role: str, stored: dict, facts: dict, *, still: bool = False) -> OutputRecord:
    """An output record from a stored object and the probe of the video it is (or was taken from)."""
    if still:
        return OutputRecord(role=role, uri=stored["uri"], sha256=stored["sha256"], bytes=stored["bytes"],
                            width=facts["width"], height=facts["height"])
    return OutputRecord(role=role, uri=stored["uri"], sha256=stored["sha256"], bytes=stored["bytes"],
                        width=facts["width"], height=facts["height"], fps=round(facts["fps"], 3),
                        duration=round(facts["duration"], 3), codec=facts["codec"],
                        has_audio=facts["audio_streams"] > 0)


def build_manifest(
    *,
    kind: str,
    render_id: str,
    source: Source,
    inputs: dict,
    pulse: dict,
    segment: tuple[float, float],
    shots: list[ShotPlan],
    loop: LoopInfo | None,
    template,
    generator: dict,
    seed: int,
    params: dict,
    outputs: list[OutputRecord],
    checks: dict,
    cost: Cost,
    cover: dict | None,
    flow_run_id: str | None,
    assets: Sequence[dict] = (),
) -> Manifest:
    """The manifest of one render (a Canvas, a video, a prompt's generation or a scene edit).

    ``source`` is the track (or, for a generation, the prompt: ``prompt:`` with the prompt's
    sha256); ``inputs`` the content hashes provenance fingerprints; ``pulse`` the tempo and meter
    the output moves to.

    ``checks`` is the check stage's result; ``cover`` (when the render animates artwork) holds the
    cover's URI, sha256 and the licence the user declared for it (with attribution, rights
    holder and asset id when it came from an API asset); ``assets`` the :func:`licence_entry` of
    every other input the render used (an edit's scene images and reference image).
    """
    if cover:
        declared = {k: v for k, v in cover.items() if k not in ("uri", "sha256")}
        assets = [licence_entry(role="cover", uri=cover["uri"], sha256=cover["sha256"], declared=declared),
                  *assets]
    return Manifest(
        id=render_id,
        kind=kind,
        created_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        source=source,
        segment=Span(start=round(segment[0], 4), end=round(segment[1], 4)),
        analysis=pulse,
        template=TemplateRef(name=template.name, version=str(template.version)),
        generator=GeneratorInfo(name=generator["name"], model=generator.get("model"),
                                revision=generator["revision"], seed=seed,
                                params={**params, **generator.get("params", {}),
                                        **({"stats": generator["stats"]} if generator.get("stats") else {})}),
        plan=Plan(shots=shots),
        loop=loop,
        outputs=outputs,
        checks={k: v for k, v in checks.items() if k != "probe"},
        cost=cost,
        licensing=Licensing(license=template.license, assets=list(assets), models=[
            {"model": generator["model"], "license": generator.get("license") or "see the model card"}
        ] if generator.get("model") else []),
        provenance=Provenance(software=f"beatframe {__version__}", prefect_flow_run_id=flow_run_id,
                              inputs_sha256=cache_key("inputs", **inputs).split("-", 1)[1]),
    )


def publish(out_dir: Path, files: dict[str, str], manifest: Manifest) -> Path:
    """Copy ``{name: staged path}`` into ``out_dir`` atomically, then write ``manifest.json``."""
    out_dir = Path(out_dir)
    for name, path in files.items():
        with atomic_path(out_dir / name) as tmp:
            shutil.copyfile(path, tmp)
    manifest_path = out_dir / "manifest.json"
    write_json_atomic(manifest_path, manifest.to_json_dict())
    return manifest_path
