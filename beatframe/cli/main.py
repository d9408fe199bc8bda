"""The ``beatframe`` command line: the commands and options the README lists, and their exit codes.

Exit codes: 0 on success, 2 on bad input (one line on stderr naming the problem), 1 otherwise.
Long work shows a progress bar when stderr is a terminal and stays quiet in pipes.

Environment: the settings of :mod:`beatframe.infra.settings` (``BEATFRAME_DEBUG=1`` prints tracebacks
of unexpected errors); ``DO_NOT_TRACK`` defaults to 1, so Prefect's client sends no usage telemetry
unless it is set otherwise.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

from beatframe import __version__
from beatframe.infra.errors import BadInputError, SpecError
from beatframe.cli.console import foreground_prefect, one_line, out_folder, progress_bar, say
from beatframe.cli.post import box_arg
from beatframe.models.backend import check_runnable_here

GENERATOR_HELP = ("auto (default: Wan on a GPU with local weights, else the CPU generator), procedural, wan-t2v,"
                  " wan-i2v, or JSON with options, e.g. '{\"name\": \"wan-t2v\", \"steps\": 30}'")


class _Parser(argparse.ArgumentParser):
    """Usage errors in one line with exit code 2, like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


# --- corrections of the analysis (--bpm, --downbeat, --meter, --beats): AnalysisHints ------------------

_HINT_FLAGS = {"bpm": "--bpm", "downbeat": "--downbeat", "meter": "--meter", "beats": "--beats",
               "beat_positions": "--beats"}


def _hint_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("corrections of the analysis (they override the estimate)")
    group.add_argument("--bpm", type=float, metavar="BPM",
                       help="the tempo, 30-300; the beats are tracked again at this tempo")
    group.add_argument("--downbeat", type=float, metavar="SECONDS",
                       help="the time of one downbeat (a bar's first beat); the bars are counted from it")
    group.add_argument("--meter", type=int, metavar="N", help="beats per bar, 2-12 (3 for a waltz)")
    group.add_argument("--beats", type=Path, metavar="FILE",
                       help="the beat grid: one time (s) per line, a .beats file with bar positions, or JAMS")


def _analysis_hints(args: argparse.Namespace):
    """The corrections the user typed, as :class:`beatframe.music.schemas.AnalysisHints` (None when
    none); a bad value or beat file is a one-line BadInputError naming its option."""
    from pydantic import ValidationError

    from beatframe.music.schemas import AnalysisHints

    fields = {"bpm": args.bpm, "downbeat": args.downbeat, "meter": args.meter}
    for name in ("bpm", "downbeat"):
        if fields[name] is not None and not math.isfinite(fields[name]):
            raise BadInputError(f"{_HINT_FLAGS[name]} {fields[name]}: give a finite number")
    if args.beats is not None:
        if args.bpm is not None:
            raise BadInputError("give either --bpm or --beats (a beat list sets the tempo)")
        from beatframe.music.analysis.hints import read_beat_file

        given = read_beat_file(args.beats)  # BadInputError naming the file and the line
        fields.update(beats=given.beats, beat_positions=given.beat_positions)
    try:
        hints = AnalysisHints(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
        loc = first.get("loc") or ()
        if loc and loc[0] in ("bpm", "downbeat", "meter"):
            raise BadInputError(f"{_HINT_FLAGS[loc[0]]} {fields[loc[0]]:g}: {message}") from None
        raise BadInputError(f"{_HINT_FLAGS.get(loc[0], '--beats') if loc else '--beats'}: {message}") from None
    return None if hints.is_empty() else hints


def _hints_json(hints) -> dict | None:
    """The corrections as flows take them (``analysis_hints``): JSON of the values given."""
    return hints.model_dump(mode="json", exclude_none=True) if hints is not None else None


def _confidence_note(analysis: dict) -> None:
    """One line on stderr when an estimate is uncertain (the render has gone on regardless)."""
    from beatframe.music.schemas import Confidence

    if not analysis.get("confidence"):
        return
    low = Confidence.model_validate(analysis["confidence"]).low()  # given values have 1
    if low:
        which = ", ".join(f"{k} {v:.2f}" for k, v in low.items())
        print(f"note: low confidence in the analysis ({which}); check it, and correct it with "
              f"--bpm, --downbeat, --meter or --beats if it is off", file=sys.stderr)


def cmd_analyze(args: argparse.Namespace) -> int:
    hints = _analysis_hints(args)
    with foreground_prefect(args.verbose):
        from beatframe.flows.analyze import analyze_track

        with progress_bar(f"Analysing {args.audio}") if not args.json else nullcontext():
            analysis = analyze_track(audio=str(args.audio), analysis_hints=_hints_json(hints))
    _confidence_note(analysis)
    if args.json:
        print(json.dumps(analysis, indent=2))
        return 0
    corrected = f" (corrected: {', '.join(analysis['corrected'])})" if analysis.get("corrected") else ""
    print(f"{args.audio}: {analysis['audio']['duration']:.1f} s, {analysis['bpm']:.1f} BPM, "
          f"{analysis['meter']}/4, {len(analysis['beats'])} beats, {len(analysis['downbeats'])} bars{corrected}")
    for section in analysis["sections"]:
        print(f"  {section['start']:7.2f}-{section['end']:7.2f}  {section['label']:<10} energy {section['energy']:.2f}")
    if analysis["vocals"]:
        sung = sum(v["end"] - v["start"] for v in analysis["vocals"])
        print(f"  vocals: {len(analysis['vocals'])} stretches, {sung:.1f} s")
    return 0


def cmd_canvas(args: argparse.Namespace) -> int:
    if args.demo == bool(args.audio):
        raise BadInputError("give an AUDIO file or --demo (not both)")
    hints = _analysis_hints(args)
    audio = args.audio
    if args.demo:
        from beatframe.infra.settings import get_settings
        from beatframe.music.synth import demo_track, write_wav

        audio = get_settings().data_dir / "demo" / "demo-track.wav"
        if not audio.exists():
            write_wav(audio, demo_track())
    out = out_folder(args.out or Path("out") / Path(audio).stem)
    if (api := _remote_api(args)) is not None:
        _remote_only(args, cover=args.cover, start=args.start, size=args.size != "720x1280", generator=args.generator,
                     cover_cleanup=args.cover_cleanup)
        return _canvas_summary(out, _remote_render(
            api, audio, out, "canvas", lambda client, track: client.canvases.create(
                track, template=args.template, seconds=args.seconds, seed=args.seed, loop=args.loop,
                analysis_hints=hints)))
    # Validate everything the user typed before starting anything heavy.
    from beatframe.music.render_requests import CanvasRequest

    CanvasRequest.validate(audio=audio, template=args.template, seconds=args.seconds, seed=args.seed,
                           size=args.size, loop_mode=args.loop, start=args.start, cover=args.cover,
                           cover_license=args.cover_license)
    check_runnable_here(args.generator)
    with foreground_prefect(args.verbose), progress_bar(f"Rendering a Canvas of {audio}"):
        from beatframe.flows.canvas import render_canvas

        manifest = render_canvas(audio=str(audio), out_dir=str(out), template=args.template,
                                 seconds=args.seconds, seed=args.seed, size=args.size, loop=args.loop,
                                 start=args.start, cover=str(args.cover) if args.cover else None,
                                 cover_license=args.cover_license, generator=args.generator,
                                 cover_cleanup=args.cover_cleanup, analysis_hints=_hints_json(hints))
    return _canvas_summary(out, manifest)


def _canvas_summary(out: Path, manifest: dict) -> int:
    seg = manifest["segment"]
    loop = manifest["loop"]
    print(f"{out}/canvas.mp4  {loop['seconds']:.2f} s ({loop['bars']} bars, {loop['mode']}) "
          f"from {seg['start']:.2f}-{seg['end']:.2f} s at {manifest['analysis']['bpm']:.1f} BPM; "
          f"seam {manifest['checks']['loop']['seam_ratio']:.2f}, "
          f"flashes/s {manifest['checks']['flash']['max_flashes_per_s']}; "
          f"cost {manifest['cost']['total']:.5f} {manifest['cost']['currency']}")
    _confidence_note(manifest["analysis"])
    return 0


def _style_of(manifest_path: Path) -> dict:
    """Template, seed and cover of an earlier render, so a video belongs with its Canvas."""
    from urllib.parse import unquote, urlparse

    try:
        manifest = json.loads(Path(manifest_path).read_text())
        style = {"template": manifest["template"]["name"], "seed": int(manifest["generator"]["seed"])}
        covers = [a for a in manifest["licensing"]["assets"] if a.get("role") == "cover"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BadInputError(f"--like {manifest_path} is not a readable beatframe manifest ({exc})") from None
    if covers:
        style["cover"] = Path(unquote(urlparse(covers[0]["source"]).path))
        style["cover_license"] = covers[0].get("license")
    return style


def cmd_video(args: argparse.Namespace) -> int:
    hints = _analysis_hints(args)
    if args.like:
        style = _style_of(args.like)
        args.template, args.seed = style["template"], style["seed"]
        args.cover = args.cover or style.get("cover")
        args.cover_license = args.cover_license or style.get("cover_license")
    out = out_folder(args.out or Path("out") / f"{Path(args.audio).stem}-video")
    if (api := _remote_api(args)) is not None:
        _remote_only(args, cover=args.cover, cuts_only=args.cuts_only, generator=args.generator)
        return _video_summary(out, _remote_render(
            api, args.audio, out, "video", lambda client, track: client.videos.create(
                track=track, template=args.template, size=args.size, seed=args.seed, analysis_hints=hints)))
    from beatframe.music.render_requests import VideoRequest

    VideoRequest.validate(audio=args.audio, template=args.template, seed=args.seed, size=args.size,
                          transitions=not args.cuts_only, cover=args.cover, cover_license=args.cover_license)
    check_runnable_here(args.generator)
    with foreground_prefect(args.verbose), progress_bar(f"Rendering a video of {args.audio}"):
        from beatframe.flows.video import render_video

        manifest = render_video(audio=str(args.audio), out_dir=str(out), template=args.template, seed=args.seed,
                                size=args.size, transitions=not args.cuts_only,
                                cover=str(args.cover) if args.cover else None, cover_license=args.cover_license,
                                generator=args.generator, analysis_hints=_hints_json(hints))
    return _video_summary(out, manifest)


def _video_summary(out: Path, manifest: dict) -> int:
    video = manifest["outputs"][0]
    print(f"{out}/video.mp4  {video['width']}x{video['height']}, {video['duration']:.2f} s, "
          f"{len(manifest['plan']['shots'])} shots at {manifest['analysis']['bpm']:.1f} BPM; "
          f"cost {manifest['cost']['total']:.5f} {manifest['cost']['currency']}")
    _confidence_note(manifest["analysis"])
    return 0


# --- remote mode: render on a beatframe API server through the SDK (beatframe.client) ---------------

def _remote_api(args: argparse.Namespace) -> tuple[str, str] | None:
    """``(url, key)`` when the command renders remotely (``--api-url`` or BEATFRAME_API_URL), else None."""
    from beatframe.infra.settings import get_settings

    url = args.api_url or get_settings().api_url
    if not url:
        return None
    key = args.api_key or get_settings().api_key
    if not key:
        raise BadInputError(f"rendering on {url} needs an API key: --api-key KEY or BEATFRAME_API_KEY")
    return url, key


def _remote_only(args: argparse.Namespace, **given: object) -> None:
    """Refuse options the API does not take (yet) rather than silently ignore them."""
    for name, value in given.items():
        if value:
            raise BadInputError(f"--{name.replace('_', '-')} is not available when rendering on an API server "
                                "(--api-url / BEATFRAME_API_URL); leave it out or render locally")


@contextmanager
def _remote_errors() -> Iterator[None]:
    """SDK errors as the CLI's exit codes: what the server refuses (4xx) and renders failed on bad
    input are bad input (2, the server's message in one line); unreachable servers, 5xx after
    retries and failed renders are failures (1)."""
    from beatframe.client import APIError, BeatframeError, RateLimitError, RenderFailed

    try:
        yield
    except RenderFailed as exc:
        if exc.type == "invalid_request_error":
            raise BadInputError(str(exc)) from None
        raise
    except (APIError, RateLimitError):
        raise
    except BeatframeError as exc:
        if exc.status is None:  # the server could not be reached or did not answer
            raise
        problem = f"{exc.param}: {exc.message}" if exc.param and exc.param not in exc.message else exc.message
        raise BadInputError(f"the API refused the request: {problem} ({exc.status} {exc.code})") from None


def _report_render(render) -> None:
    """Feed a remote render's stages to the progress bar, as local stages do."""
    from beatframe.infra import progress

    for stage in render.stages:
        if stage.status != "pending":  # rows appear as stages start, like a local render's
            progress.report(stage.name, 1.0 if stage.status == "succeeded" else 0.0)
    progress.report("render (total)", render.progress)


def _remote_render(api: tuple[str, str], audio: Path, out: Path, kind: str, create) -> dict:
    """Upload ``audio``, ``create(client, track)`` the canvas or video, wait for its render while
    showing progress, download its outputs and manifest into ``out``; returns the manifest."""
    from urllib.parse import unquote, urlsplit

    from beatframe.infra import progress
    from beatframe.client import Client
    from beatframe.infra.fsutil import write_json_atomic

    if not Path(audio).is_file():
        raise BadInputError(f"{audio}: no such file")
    try:
        client = Client(*api, timeout=120.0)
    except ValueError as exc:
        raise BadInputError(str(exc)) from None
    with client, _remote_errors(), progress_bar(f"Rendering a {kind} of {audio} on {client.base_url}"):
        progress.report("upload audio", 0.0)  # the render's own "upload" stage is the outputs'
        track = client.tracks.create(file=audio)
        progress.report("upload audio", 1.0)
        created = create(client, track)
        namespace = client.canvases if kind == "canvas" else client.videos
        done = namespace.wait(created.id, timeout=None, on_progress=_report_render)
        if not done.manifest:
            raise RuntimeError(f"{done.id} succeeded without a manifest")
        out.mkdir(parents=True, exist_ok=True)
        for number, output in enumerate(done.outputs, 1):
            name = Path(unquote(urlsplit(output.uri).path)).name  # canvas.mp4, canvas.jpg as rendered locally
            client.download(output, out / (name if name not in ("", "..", "manifest.json") else f"{kind}-{number}"))
            progress.report("download", number / len(done.outputs))
        write_json_atomic(out / "manifest.json", done.manifest)
    return done.manifest


def cmd_catalog(args: argparse.Namespace) -> int:
    from beatframe.music.catalog import check_templates, read_catalog

    entries = read_catalog(args.source)  # a malformed listing fails here, before anything renders
    check_templates(entries, default=args.template)
    out = out_folder(args.out or Path("out") / Path(args.source).stem)
    with foreground_prefect(args.verbose), progress_bar(f"Rendering {len(entries)} tracks from {args.source}"):
        from beatframe.flows.catalog import render_catalog

        summary = render_catalog(source=str(args.source), out_dir=str(out), kind=args.kind, template=args.template)
    for track in summary["tracks"]:
        if track["status"] == "succeeded":
            print(f"ok      {track['folder']:<32} cost {track['cost']:.5f}")
        else:
            print(f"FAILED  {track['folder']:<32} {one_line(track['reason'])}")
    print(f"{summary['succeeded']} of {len(summary['tracks'])} tracks rendered into {out} "
          f"(summary: {out / 'catalog.json'}); total cost {summary['cost_total']:.5f}")
    if summary["failed"]:
        say(f"beatframe: {summary['failed']} of {len(summary['tracks'])} tracks failed; see {out / 'catalog.json'}")
        return 1
    return 0


def cmd_variants(args: argparse.Namespace) -> int:
    from beatframe.music.render_requests import variant_requests

    templates = [t.strip() for t in args.templates.split(",") if t.strip()]
    variant_requests(audio=args.audio, kind=args.kind, count=args.count, templates=templates, seed=args.seed)
    hints = _analysis_hints(args)
    out = out_folder(args.out or Path("out") / f"{Path(args.audio).stem}-variants")
    with foreground_prefect(args.verbose), progress_bar(f"Rendering {args.count} variants of {args.audio}"):
        from beatframe.flows.variants import render_variants

        summary = render_variants(audio=str(args.audio), out_dir=str(out), kind=args.kind, count=args.count,
                                  templates=templates, seed=args.seed, analysis_hints=_hints_json(hints))
    for variant in summary["variants"]:
        if variant["status"] == "succeeded":
            print(f"ok      {variant['folder']}")
        else:
            print(f"FAILED  {variant['label']}: {one_line(variant['reason'])}")
    return 1 if summary["failed"] else 0


def cmd_pack(args: argparse.Namespace) -> int:
    from beatframe.music.render_requests import CanvasRequest

    CanvasRequest.validate(audio=args.audio, template=args.template, seed=args.seed, cover=args.cover,
                           cover_license=args.cover_license)
    hints = _analysis_hints(args)
    out = out_folder(args.out or Path("out") / f"{Path(args.audio).stem}-pack")
    with foreground_prefect(args.verbose), progress_bar(f"Rendering the export pack of {args.audio}"):
        from beatframe.flows.pack import render_pack

        pack = render_pack(audio=str(args.audio), out_dir=str(out), template=args.template, seed=args.seed,
                           cover=str(args.cover) if args.cover else None, cover_license=args.cover_license,
                           analysis_hints=_hints_json(hints))
    for target in pack["targets"]:
        status = "ok    " if target["spec_ok"] else "FAILED"
        detail = target.get("file") or "; ".join(target["problems"])
        print(f"{status}  {target['target']:<8} {one_line(detail)}")
    if not pack["complete"]:
        say(f"beatframe: the export pack is incomplete; see {out / 'pack.json'}")
        return 1
    print(f"{out.parent / pack['zip']}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from beatframe.infra import db

    name = (args.project or "").strip()
    if args.action == "create" and not name:
        raise BadInputError("keys create needs --project NAME")
    pool = db.get_pool()
    if args.action == "create":
        project = db.create_project(pool, name)
        record, secret = db.create_api_key(pool, project=project, env=args.env)
        print(secret)
        say(f"API key {record['id']} for project {project['name']} ({project['id']}, {args.env}); "
             "it is shown only now, store it safely")
        return 0
    project = db.get_project(pool, name) if name else None
    if name and project is None:
        raise BadInputError(f"no project named {name!r}")
    if args.action == "revoke":
        if not args.key_id:
            raise BadInputError("keys revoke needs a KEY_ID (see `beatframe keys list --project NAME`)")
        if not db.revoke_api_key(pool, args.key_id):
            raise BadInputError(f"no active key {args.key_id!r}")
        print(f"revoked {args.key_id}")
        return 0
    if project is None:
        raise BadInputError("keys list needs --project NAME")
    for key in db.list_api_keys(pool, project["id"]):
        state = "revoked" if key.get("revoked_at") else "active"
        print(f"{key['id']}  {key['env']:<4}  {key['prefix']}…  {state}  created {key['created_at']:%Y-%m-%d %H:%M}")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    import uvicorn

    from beatframe.api.app import create_app

    try:
        app = create_app()
    except ValueError as exc:  # a setting it cannot work with (BEATFRAME_RATE_LIMITS, …), named
        raise BadInputError(str(exc)) from None
    say(f"beatframe API on http://{args.host}:{args.port}/v1 (docs: /v1/docs)")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    from beatframe.music.templates import list_templates, load_template

    if args.action == "show":
        if not args.name:
            raise BadInputError("templates show needs a NAME")
        print(json.dumps(load_template(args.name).model_dump(mode="json"), indent=2))
        return 0
    for template in list_templates():
        print(f"{template.name:<20} {template.scene:<12} loop={template.default_loop:<11} {template.title}")
    return 0


def cmd_server(args: argparse.Namespace) -> int:
    from beatframe.infra.prefect_local import running_server, start_server, stop_server
    from beatframe.infra.settings import get_settings

    settings = get_settings()
    if args.action == "stop":
        print("stopped" if stop_server(settings) else "no local Prefect server was running")
        return 0
    server = running_server(settings)
    if args.action == "start" and server is None:
        server = start_server(settings)
    print(f"local Prefect server: {server.ui_url} (pid {server.pid})" if server
          else "no local Prefect server is running (the next render starts one)")
    return 0


def _remote_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--api-url", metavar="URL",
                        help="render on this beatframe API server instead of locally (default: BEATFRAME_API_URL;"
                             " set it empty to render locally)")
    parser.add_argument("--api-key", metavar="KEY", help="the API key for --api-url (default: BEATFRAME_API_KEY)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="beatframe", description="Loop-native Canvases and music videos, cut to the beat.")
    parser.add_argument("--version", action="version", version=f"beatframe {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="show Prefect's run logs")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    analyze = sub.add_parser("analyze", help="tempo, beats, downbeats, sections, energy, vocals of a track")
    analyze.add_argument("audio", type=Path)
    analyze.add_argument("--json", action="store_true", help="print the analysis JSON (beatframe.analysis/2)")
    _hint_arguments(analyze)
    analyze.set_defaults(run=cmd_analyze)

    canvas = sub.add_parser("canvas", help="render a loop-native Spotify Canvas")
    canvas.add_argument("audio", type=Path, nargs="?")
    canvas.add_argument("--demo", action="store_true", help="synthesize a demo track and render it")
    canvas.add_argument("--out", type=Path, help="output folder (default out/<track name>)")
    canvas.add_argument("--template", default="neon-pulse", help="style template (see `beatframe templates`)")
    canvas.add_argument("--seconds", type=float, default=7.0, help="loop length, rounded to whole bars (3-8)")
    canvas.add_argument("--seed", type=int, default=0)
    canvas.add_argument("--cover", type=Path, help="animate this artwork instead of a procedural scene")
    canvas.add_argument("--cover-license", help="the licence of the cover art, recorded in the manifest")
    canvas.add_argument("--loop", choices=["continuous", "rebound", "hard_cut"],
                        help="how the loop closes (default: the template's)")
    canvas.add_argument("--size", default="720x1280", help="9:16 size, 720x1280 to 1080x1920")
    canvas.add_argument("--start", type=float, help="start the loop at the bar nearest this time (s)")
    canvas.add_argument("--generator", help=GENERATOR_HELP)
    canvas.add_argument("--cover-cleanup", type=box_arg, metavar="X0,Y0,X1,Y1",
                        help="remove this box of the cover (a logo, text: Spotify forbids them) before animating it")
    _hint_arguments(canvas)
    _remote_arguments(canvas)
    canvas.set_defaults(run=cmd_canvas)

    video = sub.add_parser("video", help="render a full-length music video with the track's audio")
    video.add_argument("audio", type=Path)
    video.add_argument("--out", type=Path, help="output folder (default out/<track name>-video)")
    video.add_argument("--template", default="neon-pulse", help="style template (see `beatframe templates`)")
    video.add_argument("--size", default="1920x1080", help="1920x1080 (16:9), 1080x1920 (9:16) or 1080x1080 (1:1)")
    video.add_argument("--seed", type=int, default=0)
    video.add_argument("--cover", type=Path, help="animate this artwork instead of a procedural scene")
    video.add_argument("--cover-license", help="the licence of the cover art, recorded in the manifest")
    video.add_argument("--cuts-only", action="store_true", help="plain cuts at section changes, no transitions")
    video.add_argument("--generator", help=GENERATOR_HELP)
    video.add_argument("--like", type=Path, metavar="MANIFEST",
                       help="take template, seed and cover from a Canvas's manifest.json (expand it to a video)")
    _hint_arguments(video)
    _remote_arguments(video)
    video.set_defaults(run=cmd_video)

    variants = sub.add_parser("variants", help="several Canvases or videos of one track (seeds, templates)")
    variants.add_argument("audio", type=Path)
    variants.add_argument("--kind", choices=["canvas", "video"], default="canvas")
    variants.add_argument("--count", type=int, default=4)
    variants.add_argument("--templates", default="neon-pulse", help="comma-separated, used in turn")
    variants.add_argument("--seed", type=int, default=0, help="first seed; each variant takes the next")
    variants.add_argument("--out", type=Path, help="output folder (default out/<track name>-variants)")
    _hint_arguments(variants)
    variants.set_defaults(run=cmd_variants)

    pack = sub.add_parser("pack", help="export pack: Canvas, 9:16, 1:1 and 16:9 videos and a poster, zipped")
    pack.add_argument("audio", type=Path)
    pack.add_argument("--template", default="neon-pulse")
    pack.add_argument("--seed", type=int, default=0)
    pack.add_argument("--cover", type=Path)
    pack.add_argument("--cover-license")
    pack.add_argument("--out", type=Path, help="output folder (default out/<track name>-pack); the zip goes beside it")
    _hint_arguments(pack)
    pack.set_defaults(run=cmd_pack)

    catalog = sub.add_parser("catalog", help="render every track of a folder or CSV (a failing track fails alone)")
    catalog.add_argument("source", type=Path, help="a folder of audio files, or a CSV with a path column")
    catalog.add_argument("--out", type=Path, help="output folder (default out/<source name>)")
    catalog.add_argument("--kind", choices=["canvas", "video", "both"], default="canvas")
    catalog.add_argument("--template", default="neon-pulse", help="template for rows that name none")
    catalog.set_defaults(run=cmd_catalog)

    keys = sub.add_parser("keys", help="API keys for the HTTP API (stored hashed; a new key is shown once)")
    keys.add_argument("action", choices=["create", "list", "revoke"])
    keys.add_argument("key_id", nargs="?", help="the key to revoke")
    keys.add_argument("--project", help="project name (created if new)")
    keys.add_argument("--env", choices=["test", "live"], default="test")
    keys.set_defaults(run=cmd_keys)

    api = sub.add_parser("api", help="serve the HTTP API (/v1, OpenAPI docs at /v1/docs)")
    api.add_argument("--host", default="127.0.0.1")
    api.add_argument("--port", type=int, default=8000)
    api.set_defaults(run=cmd_api)

    templates = sub.add_parser("templates", help="list built-in templates or show one")
    templates.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    templates.add_argument("name", nargs="?")
    templates.set_defaults(run=cmd_templates)

    from beatframe.cli.post import register

    register(sub, GENERATOR_HELP)

    server = sub.add_parser("server", help="the local Prefect server that renders share")
    server.add_argument("action", choices=["start", "stop", "status"])
    server.set_defaults(run=cmd_server)
    return parser


def _debug() -> bool:
    """``BEATFRAME_DEBUG``; False when the settings do not validate, as that may be what failed."""
    from pydantic import ValidationError

    from beatframe.infra.settings import get_settings

    try:
        return get_settings().debug
    except ValidationError:
        return False


def main(argv: list[str] | None = None) -> int:
    # OpenCV's decoders print their own warnings on bad images; we report those in one line.
    os.environ.setdefault("OPENCV_LOG_LEVEL", "FATAL")
    # No usage telemetry from a creator's machine unless they opt in (unset it to allow Prefect's).
    os.environ.setdefault("DO_NOT_TRACK", "1")
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except BadInputError as exc:
        say(f"beatframe: error: {one_line(str(exc))}")
        return 2
    except SpecError as exc:
        say(f"beatframe: failed: {one_line(str(exc))}")
        return 1
    except KeyboardInterrupt:
        say("beatframe: interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI's last line of defence
        if args.verbose or _debug():
            raise
        say(f"beatframe: failed: {type(exc).__name__}: {one_line(str(exc))} (BEATFRAME_DEBUG=1 for details)")
        return 1

