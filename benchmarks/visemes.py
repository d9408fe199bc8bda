"""Benchmark the viseme timeline (beatframe.music.analysis.visemes) against a naive baseline.

Run by hand from the repository root::

    .venv/bin/python benchmarks/visemes.py [--data ../shared/data] [--no-synth]

Clips, each with its truth:

* ``mfa_acoustic_corpus.wav`` (speech): the word and ARPAbet phone intervals of its TextGrid,
  from ``speech_truth.json``;
* ``vocadito_1.wav`` (a cappella singing): its annotated notes as the sung spans (no phones);
* unless ``--no-synth``, a synthesized pop track (``beatframe.music.synth``: drums, bass, pad, lead
  and a voice singing /a/ in phrases) with its exact sung spans; every beat of them (one sung
  note) counts as an "AA" phone.

The real recordings are read in place from ``../shared/data`` (never copied) and skipped with
a message when absent. For each clip, beatframe's visemes and the baseline, measured in the
same run (mouth open, always ``AA``, wherever the 32 ms frame RMS exceeds a tenth of the clip's
95th-percentile frame RMS), are scored with the module's own measures:

* words covered: share of words (notes) with at least 20 ms of open mouth (any viseme but
  ``rest`` and ``PP``); acceptance >= 0.8;
* open in silence: share of the open-mouth time outside every word; acceptance <= 0.2;
* phone agreement: per expected viseme (P/B/M on PP, F/V on FF, AA/AE/AH on AA, IY/IH/EH on
  EE, UW/UH/OW on OO), the phones whose span is mostly covered by that viseme.

Exit status 1 when a real recording misses either acceptance figure, else 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

warnings.filterwarnings("ignore")

from beatframe.music.analysis.visemes import (  # noqa: E402
    Viseme, open_in_silence, phone_agreement, visemes, word_coverage)
from beatframe.music.audio import load_audio  # noqa: E402
from shared_data import recording  # noqa: E402

COVERAGE_MIN, SILENCE_MAX = 0.8, 0.2
CLASSES = ("PP", "FF", "AA", "EE", "OO")


def rms_baseline(y: np.ndarray, sr: int, *, ratio: float = 0.1) -> list[Viseme]:
    """Naive lip flap: ``AA`` wherever the frame RMS (32 ms, 10 ms hop) exceeds ``ratio``
    times the clip's 95th-percentile frame RMS, ``rest`` elsewhere."""
    import librosa

    hop = int(round(sr * 0.01))
    rms = librosa.feature.rms(y=y, frame_length=int(round(sr * 0.032)), hop_length=hop)[0]
    on = rms > ratio * np.percentile(rms, 95)
    duration = len(y) / sr
    out: list[Viseme] = []
    edges = np.flatnonzero(np.diff(on.astype(int))) + 1
    for a, b in zip(np.concatenate([[0], edges]), np.concatenate([edges, [len(on)]])):
        start = 0.0 if a == 0 else (a - 0.5) * hop / sr
        end = duration if b == len(on) else (b - 0.5) * hop / sr
        out.append(Viseme(start, min(end, duration), "AA" if on[a] else "rest"))
    return out


def real_items(data: Path) -> list[dict]:
    truth = json.loads((data / "speech_truth.json").read_text())
    items = []
    for name, t in truth.items():
        path = recording(data, name)
        if path is None:
            continue
        if t.get("words"):
            words, kind = [(float(a), float(b)) for a, b, _ in t["words"]], "speech, words"
        elif t.get("notes_start_end_hz"):
            words, kind = [(float(a), float(b)) for a, b, _ in t["notes_start_end_hz"]], \
                "a cappella, notes"
        else:
            continue
        clip = load_audio(path, sample_rate=16000, min_seconds=0.1)
        items.append(dict(name=name, kind=kind, y=clip.y, sr=clip.sample_rate,
                          words=words, phones=t.get("phones") or [], real=True))
    return items


def synth_item() -> dict:
    from beatframe.music.synth import synthesize_track

    tr = synthesize_track(bpm=120, meter=4, seed=5, vocals=True,
                          sections=[("intro", 2, 0.3), ("verse", 8, 0.6), ("chorus", 8, 0.9)])
    # the voice sings one /a/ note per beat: each beat of a sung span is an "AA" phone
    notes = [(t, min(t + 60.0 / tr.bpm, b), "AA") for a, b in tr.vocals
             for t in np.arange(a, b, 60.0 / tr.bpm)]
    return dict(name="synthesized pop (band + /a/ voice)", kind="synth, sung spans", y=tr.y,
                sr=tr.sample_rate, words=list(tr.vocals), phones=notes, real=False)


def score(item: dict, timeline: list[Viseme]) -> dict:
    agree = phone_agreement(timeline, item["phones"]) if item["phones"] else {}
    n_ok = sum(a for a, _ in agree.values())
    n = sum(b for _, b in agree.values())
    return dict(cov=word_coverage(timeline, item["words"]),
                sil=open_in_silence(timeline, item["words"]),
                agree=agree, phones=(n_ok / n if n else float("nan")), n_phones=n)


def cell(agree: dict, key: str) -> str:
    if key not in agree:
        return "-"
    ok, n = agree[key]
    return f"{ok}/{n}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--no-synth", action="store_true")
    args = ap.parse_args(argv)

    data = Path(args.data)
    items: list[dict] = []
    if (data / "speech_truth.json").exists():
        items += real_items(data)
    else:
        print(f"(no real data: {data / 'speech_truth.json'} not found; skipping the speech and "
              f"singing recordings)")
    if not args.no_synth:
        items.append(synth_item())
    if not items:
        return 0

    visemes(np.zeros(16000), 16000)  # warm-up: imports, first FFT plans
    print("| clip | truth | method | words covered | open in silence | PP | FF | AA | EE | OO "
          "| phones agree | seconds (x real time) | acceptance |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    failed = False
    for it in items:
        dur = len(it["y"]) / it["sr"]
        t0 = time.perf_counter()
        ours = visemes(it["y"], it["sr"])
        sec = time.perf_counter() - t0
        for method, tl, secs in (("beatframe", ours, sec),
                                 ("baseline: RMS > 0.1 x p95, AA", rms_baseline(it["y"], it["sr"]),
                                  None)):
            s = score(it, tl)
            ok = s["cov"] >= COVERAGE_MIN and s["sil"] <= SILENCE_MAX
            if method == "beatframe" and it["real"] and not ok:
                failed = True
            phones = f"{s['phones']:.3f} ({s['n_phones']})" if s["n_phones"] else "-"
            timing = f"{secs:.2f} ({secs / dur:.3f})" if secs is not None else ""
            print(f"| {it['name']} ({dur:.1f} s) | {it['kind']} ({len(it['words'])}) | {method} "
                  f"| {s['cov']:.3f} | {s['sil']:.3f} | "
                  + " | ".join(cell(s["agree"], k) for k in CLASSES)
                  + f" | {phones} | {timing} | {'pass' if ok else 'FAIL'} |")
    print(f"\nAcceptance: words covered >= {COVERAGE_MIN}, open-mouth time in silence <= "
          f"{SILENCE_MAX}. Phone cells: phones on their expected viseme / phones annotated.")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
