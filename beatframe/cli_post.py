"""The CLI's post-production commands (``beatframe edit``, …), registered on the main parser by
:func:`register`; they run the post-production flows locally with the same progress bar, output
files and exit codes as ``beatframe canvas``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from beatframe.errors import BadInputError


def _read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise BadInputError(f"{what} {path} cannot be read ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise BadInputError(f"{what} {path} is not JSON ({exc})") from None


def cmd_edit(args: argparse.Namespace) -> int:
    from beatframe.cli import _foreground_prefect, _progress_bar
    from beatframe.scenes import check_scenes
    from beatframe.video import parse_video_size
    from models.backend import parse_choice

    scenes = _read_json(args.scenes, "scenes file")
    check_scenes(scenes)
    parse_video_size(args.size)
    parse_choice(args.generator)
    out = args.out or Path("out") / f"{Path(args.scenes).stem}-edit"
    if out.exists() and not out.is_dir():
        raise BadInputError(f"--out {out} exists and is not a folder")
    with _foreground_prefect(args.verbose), _progress_bar(f"Rendering an edit of {len(scenes)} scenes"):
        from flows.scene_edit import render_scene_edit

        manifest = render_scene_edit(
            scenes=scenes, audio=str(args.audio) if args.audio else None, out_dir=str(out), size=args.size,
            seed=args.seed, transition_seconds=args.transition_seconds, consistency=not args.no_consistency,
            reference_image=str(args.reference) if args.reference else None, generator=args.generator)
    shots = manifest["plan"]["shots"]
    print(f"{out}/edit.mp4  {len(shots)} scenes, {manifest['segment']['end']:.2f} s, transitions "
          f"{', '.join(s['transition_in'] for s in shots[1:]) or 'none'}; cost {manifest['cost']['total']:.5f} "
          f"{manifest['cost']['currency']}")
    return 0


def register(sub, generator_help: str) -> None:
    """Add the post-production commands to the CLI's subparsers."""
    edit = sub.add_parser("edit", help="cut a list of scenes (prompts, templates, images) into one video")
    edit.add_argument("scenes", type=Path, help='JSON: [{"prompt" | "template" | "asset", "duration", "transition"}]')
    edit.add_argument("--audio", type=Path, help="a track: scenes change on its downbeats and it is muxed in")
    edit.add_argument("--out", type=Path, help="output folder (default out/<scenes file>-edit)")
    edit.add_argument("--size", default="1920x1080", help="16:9, 9:16 or 1:1, e.g. 1920x1080")
    edit.add_argument("--seed", type=int, default=0)
    edit.add_argument("--transition-seconds", type=float, default=0.5)
    edit.add_argument("--reference", type=Path, help="paint every scene in this image's palette")
    edit.add_argument("--no-consistency", action="store_true", help="each scene its own seed and palette")
    edit.add_argument("--generator", help=generator_help)
    edit.set_defaults(run=cmd_edit)
