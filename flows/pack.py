"""Export pack: one track rendered for every destination at once, as a folder and a zip.

    Spotify Canvas (720x1280, silent loop) + Shorts/TikTok/Reels (1080x1920 with audio)
    + square (1080x1080 with audio) + 16:9 video (1920x1080 with audio) + poster (JPEG)

Every target is its own subflow (cached like any render), all share one analysis, and the pack
manifest ``pack.json`` lists each target with its spec check. The zip is written last and
atomically, and only when every target passed.

    from beatframe.flows.pack import render_pack
    pack = render_pack(audio="song.wav", out_dir="out/song-pack")
"""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

from prefect import flow
from prefect.task_runners import ThreadPoolTaskRunner

from beatframe.infra.fsutil import atomic_path, write_json_atomic
from beatframe.music.render_requests import CanvasRequest
from beatframe.flows.fanout import analyze_first, failure_reason, outcomes, render_one
from beatframe.tasks.analyze import check_hints
from beatframe.tasks.inputs import fetch_inputs

#: target name -> (kind, size, what the destination expects)
TARGETS = {
    "canvas": ("canvas", "720x1280", "Spotify Canvas: 9:16, 3-8 s loop, H.264, silent"),
    "shorts": ("video", "1080x1920", "Shorts / TikTok / Reels: 9:16 1080x1920, H.264 + AAC"),
    "square": ("video", "1080x1080", "Square feed post: 1:1 1080x1080, H.264 + AAC"),
    "video": ("video", "1920x1080", "Music video: 16:9 1920x1080, H.264 + AAC"),
}


@flow(name="render_pack", task_runner=ThreadPoolTaskRunner(max_workers=2))
def render_pack(audio: str, out_dir: str | None = None, template: str = "neon-pulse", seed: int = 0,
                cover: str | None = None, cover_license: str | None = None,
                analysis_hints: dict | None = None) -> dict:
    """Render every target of the export pack into ``out_dir`` and zip it beside the folder;
    ``analysis_hints`` (the user's corrections of the analysis) apply to every target.

    Bad input (audio, template, seed, cover, corrections) fails the run before anything is written."""
    hints = check_hints(analysis_hints)
    local_audio, local_cover = fetch_inputs(audio, cover)
    # the targets differ only in fixed sizes, so the Canvas's request checks what every one is given
    CanvasRequest.validate(audio=local_audio, template=template, seed=seed, cover=local_cover,
                           cover_license=cover_license)
    analyze_first(local_audio, hints)
    out = Path(out_dir) if out_dir else Path("out") / f"{Path(audio).stem}-pack"
    common = {"audio": audio, "template": template, "seed": seed, "cover": cover, "cover_license": cover_license,
              **({"analysis_hints": hints} if hints else {})}
    futures = [render_one.submit(kind, name, {**common, "size": size, "out_dir": str(out / name)})
               for name, (kind, size, _) in TARGETS.items()]
    targets, files = [], []
    for (name, (kind, size, spec)), outcome in zip(TARGETS.items(), outcomes(futures)):
        if isinstance(outcome, BaseException):
            targets.append({"target": name, "spec": spec, "spec_ok": False, "problems": [failure_reason(outcome)]})
            continue
        main = outcome["outputs"][0]
        filename = f"{name}/{kind}.mp4"
        targets.append({"target": name, "spec": spec, "file": filename, "spec_ok": outcome["checks"]["spec_ok"],
                        "problems": outcome["checks"]["problems"], "sha256": main["sha256"], "bytes": main["bytes"],
                        "width": main["width"], "height": main["height"], "duration": main["duration"],
                        "has_audio": main["has_audio"], "manifest": f"{name}/manifest.json", "id": outcome["id"]})
        files += [filename, f"{name}/{kind}.jpg", f"{name}/manifest.json"]
    video = next((t for t in targets if t["target"] == "video" and t.get("file")), None)
    if video:
        with atomic_path(out / "poster.jpg") as tmp:
            shutil.copyfile(out / "video" / "video.jpg", tmp)
        targets.append({"target": "poster", "spec": "Poster: JPEG 1920x1080, first frame of the video",
                        "file": "poster.jpg", "spec_ok": True, "problems": [], "width": 1920, "height": 1080})
        files.append("poster.jpg")
    ok = all(t["spec_ok"] for t in targets) and len(targets) == len(TARGETS) + 1
    pack = {"schema": "beatframe.pack/1", "audio": audio, "template": template, "seed": seed,
            "targets": targets, "complete": ok, "zip": f"{out.name}.zip" if ok else None}
    write_json_atomic(out / "pack.json", pack)
    if ok:
        with atomic_path(out.parent / f"{out.name}.zip") as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
            for name in [*files, "pack.json"]:
                zf.write(out / name, arcname=f"{out.name}/{name}")
    return pack
