"""The CLI's post-production commands (``beatframe edit``, …), registered on the main parser by
:func:`register`; they run the post-production flows locally with the same progress bar, output
files and exit codes as ``beatframe canvas``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from beatframe.cli.console import foreground_prefect, out_folder, progress_bar
from beatframe.infra.errors import BadInputError


def _read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInputError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise BadInputError(f"{what} {path} is not JSON ({exc})") from None


def cmd_edit(args: argparse.Namespace) -> int:
    from beatframe.music.scenes import check_scenes
    from beatframe.music.video import parse_video_size
    from beatframe.models.backend import check_runnable_here

    scenes = _read_json(args.scenes, "scenes file")
    check_scenes(scenes)
    if args.reference_license and not args.reference:
        raise BadInputError("--reference-license is the licence of the --reference image: give both")
    parse_video_size(args.size)
    check_runnable_here(args.generator)
    out = out_folder(args.out or Path("out") / f"{Path(args.scenes).stem}-edit")
    with foreground_prefect(args.verbose), progress_bar(f"Rendering an edit of {len(scenes)} scenes"):
        from beatframe.flows.scene_edit import render_scene_edit

        manifest = render_scene_edit(
            scenes=scenes, audio=str(args.audio) if args.audio else None, out_dir=str(out), size=args.size,
            seed=args.seed, transition_seconds=args.transition_seconds, consistency=not args.no_consistency,
            reference_image=str(args.reference) if args.reference else None, generator=args.generator,
            reference_license=args.reference_license)
    shots = manifest["plan"]["shots"]
    print(f"{out}/edit.mp4  {len(shots)} scenes, {manifest['segment']['end']:.2f} s, transitions "
          f"{', '.join(s['transition_in'] for s in shots[1:]) or 'none'}; cost {manifest['cost']['total']:.5f} "
          f"{manifest['cost']['currency']}")
    return 0


def _licenses(args: argparse.Namespace, inputs: dict[str, tuple[str, str]]) -> dict[str, str]:
    """The declared licence of each input, by the flow's input name, from ``--…-license`` flags.

    ``inputs`` maps an input's name to ``(its option's attribute, its licence option's
    attribute)``; a licence given without its input is refused (one line).
    """
    from beatframe.music.manifest import declared_licence

    out = {}
    for name, (given, licence) in inputs.items():
        value = getattr(args, licence)
        if value is None:
            continue
        if given != "video" and getattr(args, given) is None:
            raise BadInputError(f"--{licence.replace('_', '-')} is the licence of "
                                f"--{given.replace('_', '-')}: give both")
        if not value.strip():
            raise BadInputError(f"--{licence.replace('_', '-')} is empty")
        declared_licence(value)  # a JSON record that does not parse is refused here, not mid-run
        out[name] = value
    return out


def _run_post(args: argparse.Namespace, step: str, options: dict, *,
              licenses: dict[str, str] | None = None, **references) -> int:

    video = Path(args.video)
    if not video.is_file():
        raise BadInputError(f"video {video} does not exist or is not a file")
    out = out_folder(args.out or Path("out") / f"{video.stem}-{step}")
    with foreground_prefect(args.verbose), progress_bar(f"{step}: {video.name}"):
        from beatframe.flows.post import post_video

        record = post_video(video=str(video), step=step, options=options, out_dir=str(out),
                            licenses=licenses or None, **{k: str(v) for k, v in references.items() if v})
    output = record["outputs"][0]
    print(f"{out}/{step}.mp4  {output['width']}x{output['height']}, {output['frames']} frames at {output['fps']} fps;"
          f" cost {record['cost']['total']:.5f} {record['cost']['currency']}")
    return 0


#: Help of the licence options: what they declare reaches post.json's licensing record.
LICENSE_HELP = ("the licence of {} (a name such as CC-BY-4.0, or JSON with license, attribution, "
                "rights_holder), recorded in post.json")

#: The flag of each of ``transform``'s inputs in :data:`beatframe.models.v2v.MODE_INPUTS`.
V2V_FLAGS = {"reference_image": "--reference", "reference_frames": "--reference-video", "palette": "--palette"}


def _frame_size(video: Path) -> tuple[int, int]:
    """Width and height of ``video`` from its header (nothing decoded); one line if unreadable."""
    from beatframe.music.check import probe

    if not video.is_file():
        raise BadInputError(f"video {video} does not exist or is not a file")
    try:
        facts = probe(video)
    except Exception:  # noqa: BLE001 - any container or codec failure: not a video we can read
        raise BadInputError(f"{video.name} is not a readable video") from None
    return facts.width, facts.height


def cmd_v2v(args: argparse.Namespace) -> int:
    from beatframe.infra.modes import check_mode
    from beatframe.models.v2v import MODE_INPUTS, check_upscale

    # refused here, as the API does, rather than once the clip is decoded
    given = {"reference_image": args.reference, "reference_frames": args.reference_video, "palette": args.palette}
    check_mode(args.mode, {name for name, value in given.items() if value is not None}, MODE_INPUTS,
               names=V2V_FLAGS)
    if args.mode == "upscale":
        width, height = _frame_size(Path(args.video))
        check_upscale(width=width, height=height, factor=args.factor)
    options = {"mode": args.mode, "strength": args.strength, "preserve_motion": not args.no_preserve_motion,
               "temporal_consistency": args.temporal_consistency, "factor": args.factor}
    if args.palette:
        options["palette"] = args.palette
    licenses = _licenses(args, {"video": ("video", "license"), "reference_image": ("reference", "reference_license"),
                                "reference_video": ("reference_video", "reference_video_license")})
    return _run_post(args, "v2v", options, licenses=licenses, reference_image=args.reference,
                     reference_video=args.reference_video)


def box_arg(text: str) -> list[int]:
    try:
        box = [int(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4:
        raise argparse.ArgumentTypeError(f"a box is x0,y0,x1,y1 in pixels, got {text!r}")
    return box


def cmd_inpaint(args: argparse.Namespace) -> int:
    from beatframe.models.inpaint import check_box

    if args.box is not None:
        width, height = _frame_size(Path(args.video))
        check_box(args.box, width=width, height=height)
    options = {"mode": args.mode, "box": args.box, "feather_radius": args.feather}
    if args.aspect:
        options["target_aspect"] = args.aspect
    licenses = _licenses(args, {"video": ("video", "license"),
                                "reference_image": ("replacement", "replacement_license")})
    return _run_post(args, "inpaint", options, licenses=licenses, reference_image=args.replacement)


def cmd_lipsync(args: argparse.Namespace) -> int:
    options = {"face_region": args.face, "expression": args.expression, "intensity": args.intensity,
               "start": args.start, "force": args.force, "follow": args.follow}
    if args.mouth:
        options["mouth"] = args.mouth
    licenses = _licenses(args, {"video": ("video", "license"), "audio": ("audio", "audio_license")})
    return _run_post(args, "lipsync", options, licenses=licenses, audio=args.audio)


def cmd_follow(args: argparse.Namespace) -> int:

    entities = []
    for given in args.reference:
        name, sep, image = given.partition("=")
        if not sep or not name or not image:
            raise BadInputError(f"--reference is NAME=IMAGE, got {given!r}")
        entities.append({"name": name, "image": image, "entity_type": args.entity_type})
    out = args.out or Path("out") / f"{Path(args.video).stem}-follow"
    with foreground_prefect(args.verbose):
        from beatframe.flows.post import follow_video

        report = follow_video(video=str(args.video), entities=entities, out_dir=str(out))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{out}/follow.json  {report['entities_tracked']} entities over {report['frames_analyzed']} frames,"
          f" consistency {report['consistency_score']:.2f}")
    return 0


def cmd_visemes(args: argparse.Namespace) -> int:
    from contextlib import nullcontext


    bar = nullcontext() if args.json else progress_bar(f"Reading the visemes of {args.audio}")
    with foreground_prefect(args.verbose), bar:
        from beatframe.flows.analyze import track_visemes

        timeline = track_visemes(audio=str(args.audio))
    if args.json:
        print(json.dumps(timeline))
        return 0
    open_time = sum(v["end"] - v["start"] for v in timeline if v["viseme"] not in ("rest", "PP"))
    print(f"{args.audio}: {len(timeline)} visemes, mouth open {open_time:.1f} s of {timeline[-1]['end']:.1f} s")
    for v in timeline:
        print(f"  {v['start']:8.3f}-{v['end']:8.3f}  {v['viseme']}")
    return 0


def cmd_deploy(args: argparse.Namespace) -> int:
    from beatframe.cli.deploy import deploy_all
    from beatframe.infra.settings import get_settings

    if not get_settings().prefect_api_url:
        raise BadInputError("set PREFECT_API_URL to the Prefect server to deploy to")
    try:
        applied = deploy_all(args.prefect_yaml, names=args.name or None, zombie_after=args.zombie_after)
    except RuntimeError as exc:  # prefect deploy failed: its own output says why, in full
        print(f"beatframe: {exc}", file=sys.stderr)
        return 1
    for name in applied:
        print(f"deployed {name}")
    return 0


def register(sub, generator_help: str) -> None:
    """Add the post-production commands to the CLI's subparsers."""
    edit = sub.add_parser("edit", help="cut a list of scenes (prompts, templates, images) into one video")
    edit.add_argument("scenes", type=Path, help='JSON: [{"prompt" | "template" | "asset", "duration", "transition"}];'
                                                ' an image scene may add its "license", "attribution", "rights_holder"')
    edit.add_argument("--audio", type=Path, help="a track: scenes change on its downbeats and it is muxed in")
    edit.add_argument("--out", type=Path, help="output folder (default out/<scenes file>-edit)")
    edit.add_argument("--size", default="1920x1080", help="16:9, 9:16 or 1:1, e.g. 1920x1080")
    edit.add_argument("--seed", type=int, default=0)
    edit.add_argument("--transition-seconds", type=float, default=0.5)
    edit.add_argument("--reference", type=Path, help="paint every scene in this image's palette")
    edit.add_argument("--reference-license", help="the licence of the --reference image, recorded in the manifest")
    edit.add_argument("--no-consistency", action="store_true", help="each scene its own seed and palette")
    edit.add_argument("--generator", help=generator_help)
    edit.set_defaults(run=cmd_edit)

    visemes = sub.add_parser("visemes", help="the mouth shapes of a voice (PP, FF, AA, EE, OO, rest) with timings")
    visemes.add_argument("audio", type=Path)
    visemes.add_argument("--json", action="store_true", help='print [{"start", "end", "viseme"}]')
    visemes.set_defaults(run=cmd_visemes)

    deploy = sub.add_parser("deploy", help="create prefect.yaml's work pools and the dead-worker automation on the Prefect server "
                                        "(PREFECT_API_URL), then run prefect deploy on it")
    deploy.add_argument("--prefect-yaml", type=Path, default=Path("prefect.yaml"))
    deploy.add_argument("--name", action="append", help="only this deployment (repeat for several)")
    deploy.add_argument("--zombie-after", type=float, default=90.0, metavar="SECONDS",
                        help="mark a flow run Crashed after this long without a heartbeat (its worker died)")
    deploy.set_defaults(run=cmd_deploy)

    from beatframe.models.v2v import MODES, PALETTES

    v2v = sub.add_parser("v2v", help="video-to-video: style, motion, enhancement, upscale, interpolation, colour")
    v2v.add_argument("video", type=Path)
    v2v.add_argument("--mode", required=True, choices=MODES)
    v2v.add_argument("--strength", type=float, default=0.7, help="0-1, how far toward the transformed clip")
    v2v.add_argument("--reference", type=Path, help="the style image (style_transfer) or colours (colorization)")
    v2v.add_argument("--reference-video", type=Path, help="the camera motion to transfer (motion_transfer)")
    v2v.add_argument("--palette", choices=sorted(PALETTES), help="colorization's palette")
    v2v.add_argument("--factor", type=int, default=2, help="upscale's size / interpolation's frame-rate factor")
    v2v.add_argument("--temporal-consistency", type=float, default=0.8, help="0-1: flicker suppression")
    v2v.add_argument("--no-preserve-motion", action="store_true")
    v2v.add_argument("--out", type=Path, help="output folder (default out/<video>-v2v)")
    v2v.add_argument("--license", help=LICENSE_HELP.format("the video"))
    v2v.add_argument("--reference-license", help=LICENSE_HELP.format("the --reference image"))
    v2v.add_argument("--reference-video-license", help=LICENSE_HELP.format("the --reference-video"))
    v2v.set_defaults(run=cmd_v2v)

    inpaint = sub.add_parser("inpaint", help="remove, replace or blend a region, replace the background, extend")
    inpaint.add_argument("video", type=Path)
    inpaint.add_argument("--mode", default="remove", choices=["remove", "replace", "blend", "background", "extend"])
    inpaint.add_argument("--box", type=box_arg, help="x0,y0,x1,y1 in pixels (the region, or the foreground)")
    inpaint.add_argument("--feather", type=int, default=10, help="feather radius in pixels")
    inpaint.add_argument("--replacement", type=Path, help="the image replace/blend/background puts in")
    inpaint.add_argument("--aspect", help="extend's target aspect ratio, e.g. 9:16")
    inpaint.add_argument("--out", type=Path, help="output folder (default out/<video>-inpaint)")
    inpaint.add_argument("--license", help=LICENSE_HELP.format("the video"))
    inpaint.add_argument("--replacement-license", help=LICENSE_HELP.format("the --replacement image"))
    inpaint.set_defaults(run=cmd_inpaint)

    lipsync = sub.add_parser("lipsync", help="animate a mouth in a face region of a clip, following a voice")
    lipsync.add_argument("video", type=Path)
    lipsync.add_argument("--audio", type=Path, required=True, help="the voice the mouth follows")
    lipsync.add_argument("--face", type=box_arg, required=True, metavar="X0,Y0,X1,Y1", help="the face region")
    lipsync.add_argument("--mouth", type=box_arg, metavar="X0,Y0,X1,Y1", help="the mouth (default: the face's"
                                                                            " lower-middle third)")
    lipsync.add_argument("--follow", action="store_true", help="follow the face through the clip and move the mouth"
                                                               " with it (--face and --mouth: where they are in"
                                                               " the first frame)")
    lipsync.add_argument("--expression", default="neutral", choices=["neutral", "happy", "sad", "surprised", "angry"])
    lipsync.add_argument("--intensity", type=float, default=1.0, help="0-2: how wide the mouth opens")
    lipsync.add_argument("--start", type=float, default=0.0, help="the audio time of the clip's first frame (s)")
    lipsync.add_argument("--force", action="store_true", help="lip-sync a Canvas anyway (Spotify forbids singing"
                                                              " faces on a Canvas)")
    lipsync.add_argument("--out", type=Path, help="output folder (default out/<video>-lipsync)")
    lipsync.add_argument("--license", help=LICENSE_HELP.format("the video"))
    lipsync.add_argument("--audio-license", help=LICENSE_HELP.format("the --audio voice"))
    lipsync.set_defaults(run=cmd_lipsync)

    follow = sub.add_parser("follow", help="follow entities through a clip (boxes, confidence, consistency score)")
    follow.add_argument("video", type=Path)
    follow.add_argument("--reference", action="append", required=True, metavar="NAME=IMAGE",
                        help="an entity and its reference image (repeat for several)")
    follow.add_argument("--entity-type", default="object")
    follow.add_argument("--json", action="store_true", help="print the report")
    follow.add_argument("--out", type=Path, help="output folder (default out/<video>-follow)")
    follow.set_defaults(run=cmd_follow)
