"""Stage 7: the manifest: built, uploaded beside the outputs, published with them to the user's folder."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_table_artifact

from beatframe.infra.cost import CostLog
from beatframe.infra.fsutil import write_json_atomic
from beatframe.music.manifest import build_manifest, declared_licence, media_record, publish
from beatframe.music.schemas import LoopInfo, ShotPlan, Source
from beatframe.music.templates import load_template
from beatframe.tasks.upload import upload_outputs


def _cover_record(cover: str | None, cover_sha256: str | None, cover_license: str | None) -> dict | None:
    """The cover's licensing entry; ``cover_license`` is a licence name or a JSON record (an API
    asset's licence, attribution, rights holder and id), copied in whole."""
    if cover is None:
        return None
    # the declared fields come first: a declared record never overrides the measured hash
    return {**declared_licence(cover_license), "uri": Path(cover).resolve().as_uri(), "sha256": cover_sha256}


def _finish(manifest, *, costs: CostLog, stored: dict, files: dict[str, str], out_dir: str) -> dict:
    create_table_artifact(table=costs.table(), key=f"{manifest.kind}-cost",
                          description=f"Cost log of {manifest.id} ({costs.prices.currency})")
    main = next(iter(files))
    staging = Path(files[main]).parent / "manifest.json"
    write_json_atomic(staging, manifest.to_json_dict())
    upload_outputs.fn({"manifest.json": str(staging)}, stored[main]["key"].rsplit("/", 1)[0])
    publish(Path(out_dir), files, manifest)
    return manifest.to_json_dict()


def _manifest(*, kind: str, role: str, render_id: str, request, audio_path: str, inputs: dict, analysis: dict,
              segment: tuple[float, float], shots: list[ShotPlan], loop: LoopInfo | None, generator: dict,
              params: dict, stored: dict, checks: dict, costs: CostLog, files: dict[str, str], out_dir: str,
              flow_run_id: str | None, assets: list[dict] = ()) -> dict:
    facts = checks["probe"]
    video_name, poster_name = list(files)
    pulse = {"bpm": analysis["bpm"], "meter": analysis["meter"]}
    if analysis.get("corrected"):  # the values the user gave (beatframe.music.schemas.AnalysisHints)
        pulse["corrected"] = list(analysis["corrected"])
    if analysis.get("confidence"):
        pulse["confidence"] = dict(analysis["confidence"])
    manifest = build_manifest(
        kind=kind, render_id=render_id, inputs=inputs, pulse=pulse,
        source=Source(uri=Path(audio_path).as_uri(), sha256=inputs["audio"], duration=analysis["audio"]["duration"]),
        segment=segment, shots=shots, loop=loop, template=load_template(request.template), generator=generator,
        seed=request.seed, params=params,
        outputs=[media_record(role, stored[video_name], facts),
                 media_record("poster", stored[poster_name], facts, still=True)],
        checks=checks, cost=costs.summary(),
        cover=_cover_record(request.cover and str(request.cover), inputs["cover"], request.cover_license),
        flow_run_id=flow_run_id, assets=assets,
    )
    return _finish(manifest, costs=costs, stored=stored, files=files, out_dir=out_dir)


@task(name="canvas-manifest")
def finalize_canvas(*, plan: dict, clip: dict, **common) -> dict:
    """Write the Canvas's ``manifest.json`` with the cost log (and the post steps that ran on its
    loop; ``assets``: the licence entries of their reference images); publish outputs and manifest
    to ``out_dir``."""
    post = {"post": clip["post"]} if clip.get("post") else {}
    return _manifest(
        kind="canvas", role="canvas", segment=(plan["start"], plan["end"]),
        shots=[ShotPlan(start=round(plan["start"], 4), end=round(plan["end"], 4), section=plan["section"],
                        scene=plan["scene"], transition_in="cut")],
        loop=LoopInfo(mode=plan["loop_mode"], bars=plan["bars"], seconds=round(common["checks"]["probe"]["duration"], 3)),
        generator=clip["generator"], params={"scene": plan["scene"], **post}, **common)


@task(name="video-manifest")
def finalize_video(*, shots: list[dict], generator: dict, post: list[dict] | None = None, **common) -> dict:
    """Write the video's ``manifest.json`` with the cost log (and the post steps its shots went
    through; ``assets``: the licence entries of their reference images); publish outputs and
    manifest to ``out_dir``."""
    request, fps = common["request"], 30
    return _manifest(
        kind="video", role="video", segment=(0.0, common["analysis"]["audio"]["duration"]),
        shots=[ShotPlan(start=round(s["first_frame"] / fps, 4), end=round(s["last_frame"] / fps, 4),
                        section=s["section"], scene=request.scene, transition_in=s["transition_in"])
               for s in shots],
        loop=None, generator=generator,
        params={"scene": request.scene, "size": f"{request.size[0]}x{request.size[1]}",
                **({"post": post} if post else {})}, **common)


@task(name="generation-manifest")
def finalize_generation(*, render_id: str, request: dict, plan: dict, clip: dict, stored: dict, checks: dict,
                        costs: CostLog, files: dict[str, str], out_dir: str, flow_run_id: str | None) -> dict:
    """Write a prompt's generation ``manifest.json``: the prompt (by its sha256) as the source, the
    pulse it moves to, every request parameter; publish outputs and manifest to ``out_dir``."""
    import hashlib

    facts = checks["probe"]
    video_name, poster_name = list(files)
    prompt_sha256 = hashlib.sha256(request["prompt"].encode()).hexdigest()
    template = load_template(plan["template"])
    seconds = round(plan["n_frames"] / plan["fps"], 4)
    manifest = build_manifest(
        kind="generation", render_id=render_id, inputs={"prompt": prompt_sha256},
        source=Source(uri=f"prompt:sha256:{prompt_sha256}", sha256=prompt_sha256, duration=seconds),
        pulse={"bpm": plan["bpm"], "meter": 4}, segment=(0.0, seconds),
        shots=[ShotPlan(start=0.0, end=seconds, section="chorus", scene=template.scene, transition_in="cut")],
        loop=None, template=template, generator=clip["generator"], seed=plan["seed"],
        params={**{k: v for k, v in request.items() if k not in ("seed", "webhook_url")},
                "scene": template.scene, "matched_word": plan["matched_word"], "genre_style": plan["genre"]},
        outputs=[media_record("video", stored[video_name], facts),
                 media_record("thumbnail", stored[poster_name], facts, still=True)],
        checks=checks, cost=costs.summary(), cover=None, flow_run_id=flow_run_id,
    )
    return _finish(manifest, costs=costs, stored=stored, files=files, out_dir=out_dir)


@task(name="edit-manifest")
def finalize_edit(*, render_id: str, plan: dict, scenes: list[dict], clip: dict, inputs: dict, audio: str | None,
                  seed: int, params: dict, licensing: list[dict], stored: dict, checks: dict, costs: CostLog,
                  files: dict[str, str], out_dir: str, flow_run_id: str | None) -> dict:
    """Write a scene edit's ``manifest.json``: the track (or the scenes, by their sha256) as the
    source, every scene as a shot with its transition, ``licensing`` the licence entries of its
    scene images and reference image; publish outputs and manifest to ``out_dir``."""
    analysis, planned = plan["analysis"], plan["scenes"]
    facts = checks["probe"]
    video_name, poster_name = list(files)
    duration = analysis["audio"]["duration"]
    source = (Source(uri=Path(audio).as_uri(), sha256=inputs["audio"], duration=duration) if audio else
              Source(uri=f"scenes:sha256:{analysis['audio']['sha256']}", sha256=analysis["audio"]["sha256"],
                     duration=duration))
    first = load_template(planned[0]["template"])
    manifest = build_manifest(
        kind="edit", render_id=render_id, inputs=inputs, source=source,
        pulse={"bpm": analysis["bpm"], "meter": analysis["meter"]}, segment=(0.0, duration),
        shots=[ShotPlan(start=round(s["first_frame"] / 30, 4), end=round(s["last_frame"] / 30, 4),
                        section=s["section"], scene=load_template(s["template"]).scene, transition_in=s["transition_in"])
               for s in planned],
        loop=None, template=first, generator=clip["generator"], seed=seed,
        params={**params, "scenes": scenes},
        outputs=[media_record("video", stored[video_name], facts),
                 media_record("thumbnail", stored[poster_name], facts, still=True)],
        checks=checks, cost=costs.summary(), cover=None, flow_run_id=flow_run_id, assets=licensing,
    )
    return _finish(manifest, costs=costs, stored=stored, files=files, out_dir=out_dir)
