"""Song-structure (section) evaluation: scores, annotated tracks and a report (run by hand).

    .venv/bin/python benchmarks/sections_eval.py [--data ../shared/data] [--no-synth] [--no-loo]

Scores (:func:`score_sections`), for one track:

* ``hr3f``: boundary hit-rate F-measure at +-3 s (``mir_eval.segment.detection``, ``window=3``,
  ``trim=True``: the first and last boundary of each side are not scored), truth as annotated;
* ``label_acc``: the fraction of the time (10 frames/s over ``[0, duration]``) where our label
  names the truth's class under the best one-to-one mapping between our label names and the truth
  classes (Hungarian, ``scipy.optimize.linear_sum_assignment``). Truth classes strip trailing
  digits (``A1``, ``A2`` -> ``A``; ``V1``..``V8`` -> ``V``); the unlabeled ``""`` is a class of
  its own and also covers the time before / after the annotation;
* ``pairwise_f``, ``nce_over``, ``nce_under``: ``mir_eval.segment.pairwise`` F and the normalized
  conditional entropies (``mir_eval.segment.nce``), both blind to the label names (0.1 s frames),
  over the same classes and span.

:func:`real_section_items` lists the section-annotated recordings of ``../shared/data`` (read in
place, never copied; skipped with a message when absent); :data:`SYNTH_SECTIONS` the synthesized
tracks with exact section truth. :func:`main` prints per-track and mean tables for the method of
the working tree ("after") beside the figures measured for the method before issue 14 ("before",
:data:`BEFORE`), the leave-one-out figures for the parameters chosen, and the time the section
stage takes on a 3-minute track.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

warnings.filterwarnings("ignore")

FRAME = 0.1  # seconds per frame of the label scores


def truth_class(label: str) -> str:
    """The truth class of an annotated label: trailing digits stripped (``"V3"`` -> ``"V"``)."""
    return re.sub(r"\d+$", "", str(label).strip())


def _frames(intervals, labels, n: int) -> np.ndarray:
    t = (np.arange(n) + 0.5) * FRAME
    out = np.full(n, "", dtype=object)
    for (a, b), lab in zip(intervals, labels):
        out[(t >= a) & (t < b)] = lab
    return out


def _pad(intervals, labels, duration: float) -> tuple[np.ndarray, list[str]]:
    """Truth spans extended to ``[0, duration]`` with ``""`` (unannotated) where they stop short."""
    iv = [list(map(float, x)) for x in intervals]
    lb = list(labels)
    if iv[0][0] > 0:
        iv.insert(0, [0.0, iv[0][0]])
        lb.insert(0, "")
    if iv[-1][1] < duration:
        iv.append([iv[-1][1], float(duration)])
        lb.append("")
    elif iv[-1][1] > duration:
        keep = [i for i, (a, _) in enumerate(iv) if a < duration]
        iv, lb = [iv[i] for i in keep], [lb[i] for i in keep]
        iv[-1][1] = float(duration)
    return np.asarray(iv), lb


def label_accuracy(ref_intervals, ref_labels, est_intervals, est_labels, duration: float) -> float:
    """Time fraction labelled right under the best one-to-one map of our names to truth classes."""
    from scipy.optimize import linear_sum_assignment

    n = max(1, int(round(duration / FRAME)))
    r = _frames(ref_intervals, ref_labels, n)
    e = _frames(est_intervals, est_labels, n)
    rc, ri = np.unique(r.astype(str), return_inverse=True)
    ec, ei = np.unique(e.astype(str), return_inverse=True)
    m = np.zeros((len(ec), len(rc)))
    np.add.at(m, (ei, ri), 1.0)
    rows, cols = linear_sum_assignment(-m)
    return float(m[rows, cols].sum() / n)


def score_sections(ref_intervals, ref_labels, est_sections, duration: float) -> dict:
    """Boundary and label scores of estimated sections against a truth annotation.

    Parameters
    ----------
    ref_intervals : array-like, shape (n, 2)
        Truth spans (s) as annotated (they may start after 0 and stop before ``duration``).
    ref_labels : list of str
        Truth labels (``"A1"``, ``"V3"``, ``""``...); trailing digits are stripped for the label
        scores.
    est_sections : list of (start, end, label) or of objects with ``.start``, ``.end``, ``.label``
        Our sections, contiguous over ``[0, duration]``.
    duration : float
        Length of the audio (s).

    Returns
    -------
    dict
        ``hr3f``, ``precision``, ``recall``, ``hr05f`` (the F-measure at +-0.5 s),
        ``label_acc``, ``pairwise_f``, ``nce_over``, ``nce_under`` (see the module docstring).
    """
    import mir_eval

    est = [(s.start, s.end, s.label) if hasattr(s, "start") else tuple(s) for s in est_sections]
    est_iv = np.asarray([[float(a), float(b)] for a, b, _ in est])
    est_lb = [str(lab) for *_, lab in est]
    ref_iv = np.asarray(ref_intervals, dtype=float)
    p, r, f = mir_eval.segment.detection(ref_iv, est_iv, window=3.0, trim=True)
    f05 = mir_eval.segment.detection(ref_iv, est_iv, window=0.5, trim=True)[2]
    ref_pad, ref_lb = _pad(ref_iv, [truth_class(x) for x in ref_labels], duration)
    est_iv = est_iv.copy()
    est_iv[0, 0], est_iv[-1, 1] = 0.0, float(duration)
    # mir_eval wants non-empty label strings for its structure scores
    rl = [x if x else "<none>" for x in ref_lb]
    pw = mir_eval.segment.pairwise(ref_pad, rl, est_iv, est_lb, frame_size=FRAME)
    so, su, _ = mir_eval.segment.nce(ref_pad, rl, est_iv, est_lb, frame_size=FRAME)
    return dict(hr3f=float(f), precision=float(p), recall=float(r), hr05f=float(f05),
                label_acc=label_accuracy(ref_pad, ref_lb, est_iv, est_lb, duration),
                pairwise_f=float(pw[2]), nce_over=float(so), nce_under=float(su))


# ------------------------------------------------------------------------------------ tracks

def real_section_items(data: Path) -> list[dict]:
    """The section-annotated recordings of ``data`` (``truth.json`` entries with ``sections``).

    Returns
    -------
    list of dict
        ``name``, ``path``, ``ref_intervals`` (n x 2), ``ref_labels``; empty when the folder or
        its ``truth.json`` is missing (said once).
    """
    from shared_data import recording

    truth_path = Path(data) / "truth.json"
    if not truth_path.exists():
        print(f"(no real data: {truth_path} not found; skipping the real recordings)")
        return []
    items = []
    for name, t in json.loads(truth_path.read_text()).items():
        if not t.get("sections"):
            continue
        path = recording(Path(data), name)
        if path is None:
            continue
        secs = [(float(a), float(b), str(lab)) for a, b, lab in t["sections"]]
        items.append(dict(name=name, path=path,
                          ref_intervals=np.array([[a, b] for a, b, _ in secs]),
                          ref_labels=[lab for *_, lab in secs]))
    return items


def synth_section_items() -> list[dict]:
    """The synthesized tracks of ``benchmarks/analysis.py`` (``SYNTH``) with their exact sections
    (rubato ones with the truth warped like the audio), as ``name``, ``clip`` (audio), truth."""
    from analysis import SYNTH

    from beatframe.music.audio import clip_from_array
    from beatframe.music.synth import rubato, synthesize_track

    items = []
    for name, kw in SYNTH:
        kw = dict(kw)
        warp = kw.pop("warp", None)
        tr = synthesize_track(**kw)
        if warp:
            tr = rubato(tr, start=warp[0], end=warp[1], stretch=warp[2])
        items.append(dict(name=name, clip=clip_from_array(tr.y, tr.sample_rate),
                          ref_intervals=np.array([[a, b] for a, b, _ in tr.sections]),
                          ref_labels=[lab for *_, lab in tr.sections]))
    return items


def section_inputs(item: dict) -> dict:
    """What the section stage gets inside :func:`beatframe.music.analysis.analyze_clip`: the
    features, the energy curve, and the beats and downbeats of the analysis itself (so this
    follows whatever the beat stage does), plus that analysis (its ``sections`` are the ones of
    the pipeline as integrated)."""
    from beatframe.music.analysis import analyze_clip
    from beatframe.music.analysis.energy import energy_curve
    from beatframe.music.analysis.onsets import compute_features
    from beatframe.music.audio import load_audio

    clip = item.get("clip") or load_audio(item["path"])
    a = analyze_clip(clip)
    duration = float(a.audio.duration)
    feats = compute_features(clip.y, clip.sample_rate)
    curve, _ = energy_curve(clip.y, clip.sample_rate)
    return dict(feats=feats, curve=curve, duration=duration, beats=np.asarray(a.beats, float),
                downbeats=np.asarray(a.downbeats, float), analysis=a)


def run_sections(inp: dict, **kw) -> tuple[list, float, float]:
    """Sections of the working tree's method on ``inp``: (spans, confidence, seconds)."""
    from beatframe.music.analysis import sections as S

    t0 = time.perf_counter()
    st = S.analyze_structure(inp["feats"], inp["downbeats"], inp["curve"], inp["duration"], **kw)
    spans = S.label_sections(inp["feats"], st.bounds, inp["curve"], structure=st)
    conf = S.section_confidence(st)
    return spans, conf, time.perf_counter() - t0


# ------------------------------------------------------------------------- the method before

#: Commit whose ``sections.py`` is the method before issue 14 (bar-level checkerboard novelty).
BEFORE_REV = "5954f23"

#: Figures measured at the start of issue 14 with the method of :data:`BEFORE_REV` (shown when
#: that file cannot be loaded from git): hr3f, label_acc, pairwise_f.
BEFORE = {
    "FMP_C4_Audio_Brahms_HungarianDances-05_Ormandy.mp3": (0.583, 0.615, 0.546),
    "FMP_C4_F13_ZagerEvans_InTheYear2525.mp3": (0.560, 0.515, 0.523),
    "syn_pop_120_4-4_3min": (0.824, 0.902, 0.899),
    "syn_waltz_90_3-4": (0.909, 0.983, 0.985),
    "syn_slow_68_4-4": (0.571, 0.880, 0.797),
    "syn_fast_172_4-4": (0.800, 0.761, 0.781),
    "syn_ramp_100-124": (0.667, 0.972, 0.976),
    "syn_gap_128": (0.889, 0.969, 0.972),
    "syn_swing_110": (0.000, 0.707, 0.675),
    "syn_rubato_120": (0.400, 0.766, 0.743),
    "syn_rubato_96_3-4": (0.000, 0.691, 0.651),
}


def before_module():
    """``sections.py`` of :data:`BEFORE_REV` as a module, or None when git or its imports fail."""
    import importlib.util
    import subprocess
    import tempfile

    try:
        src = subprocess.run(["git", "show", f"{BEFORE_REV}:beatframe/music/analysis/sections.py"],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
        path = Path(tempfile.gettempdir()) / f"beatframe_sections_{BEFORE_REV}.py"
        path.write_text(src)
        spec = importlib.util.spec_from_file_location("sections_before", path)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["sections_before"] = mod
        spec.loader.exec_module(mod)
        return mod
    except Exception as e:  # noqa: BLE001 - any failure means: use the recorded figures
        print(f"(the method before, {BEFORE_REV}, could not be loaded: {e}; "
              "recorded figures shown)")
        return None


def run_before(mod, inp: dict) -> list:
    bounds = mod.segment(inp["feats"], inp["downbeats"], inp["curve"], inp["duration"])
    return mod.label_sections(inp["feats"], bounds, inp["curve"])


# ------------------------------------------------------------------------------------ report

LOO_THRESHOLDS = (0.05, 0.075, 0.1, 0.125, 0.15, 0.2)
LOO_SF_WEIGHTS = (0.0, 1.0 / 3.0, 0.5, 2.0 / 3.0)


def leave_one_out(real: list[dict]) -> list[dict]:
    """Tune on all real tracks but one, score that one; for PEAK_THRESHOLD alone and for
    (SF_WEIGHT, PEAK_THRESHOLD) together. Ties go to the value nearest the default."""
    from beatframe.music.analysis import sections as S

    default_w, default_t = S.SF_WEIGHT, S.PEAK_THRESHOLD
    grid = {}
    try:
        for w in LOO_SF_WEIGHTS:
            S.SF_WEIGHT = w
            for t in LOO_THRESHOLDS:
                for it in real:
                    spans, _, _ = run_sections(it["inp"], threshold=t)
                    grid[(w, t, it["name"])] = score_sections(
                        it["ref_intervals"], it["ref_labels"], spans, it["inp"]["duration"])["hr3f"]
    finally:
        S.SF_WEIGHT = default_w
    rows = []
    for held in real:
        train = [it["name"] for it in real if it is not held]
        for what, combos in (("threshold", [(default_w, t) for t in LOO_THRESHOLDS]),
                             ("weight+threshold", [(w, t) for w in LOO_SF_WEIGHTS
                                                   for t in LOO_THRESHOLDS])):
            def fit(c):
                return (np.mean([grid[(c[0], c[1], n)] for n in train]),
                        -abs(c[0] - default_w) - abs(c[1] - default_t))
            best = max(combos, key=fit)
            rows.append(dict(held=held["name"], what=what, sf_weight=best[0], threshold=best[1],
                             train=float(fit(best)[0]),
                             test=grid[(best[0], best[1], held["name"])],
                             default=grid[(default_w, default_t, held["name"])]))
    return rows


GRIDS = (("0.5 s (default)", None), ("beats", "beats"), ("bars cut into ~0.5 s", "bars"),
         ("0.25 s", 0.25), ("0.4 s", 0.4))


def _bar_frames(downbeats: np.ndarray) -> np.ndarray:
    out = []
    for a, b in zip(downbeats[:-1], downbeats[1:]):
        k = max(1, round((b - a) / 0.5))
        out.extend(a + (b - a) * np.arange(k) / k)
    return np.asarray(out + list(downbeats[-1:]))


def grid_sensitivity(items: list[dict]) -> dict:
    """HR3F per track with other frames than the default: how much of a score is the 3-s
    window's edge (a boundary found 2.9 s or 3.1 s from the annotation) rather than the method."""
    from beatframe.music.analysis import sections as S

    out = {}
    for label, g in GRIDS:
        for it in items:
            inp = it["inp"]
            if g is None:
                beats = None
            elif g == "beats":
                beats = inp["beats"]
            elif g == "bars":
                beats = _bar_frames(inp["downbeats"])
            else:
                beats = np.arange(g, inp["duration"], g)
            st = S.analyze_structure(inp["feats"], inp["downbeats"], inp["curve"], inp["duration"],
                                     beats=beats)
            est = [(a, b, "x") for a, b in zip(st.bounds[:-1], st.bounds[1:])]
            out[(label, it["name"])] = score_sections(it["ref_intervals"], it["ref_labels"], est,
                                                      inp["duration"])["hr3f"]
    return out


def _f(x) -> str:
    return "  -  " if x is None or (isinstance(x, float) and np.isnan(x)) else f"{x:.3f}"


def print_table(title: str, rows: list[dict]) -> None:
    print(f"\n## {title}\n")
    print("| track | dur s | before HR3F | before lblAcc | before pwF | HR3F | P | R | HR0.5F | "
          "lblAcc | pwF | NCE over | NCE under | conf | n sect | pipeline HR3F | s |")
    print("|---|" + "---|" * 16)
    keys = ("b_hr3f", "b_label_acc", "b_pairwise_f", "hr3f", "precision", "recall", "hr05f",
            "label_acc", "pairwise_f", "nce_over", "nce_under", "conf")
    for r in rows:
        print(f"| {r['name']} | {r['dur']:.1f} | " + " | ".join(_f(r.get(k)) for k in keys)
              + f" | {r['n']} | {_f(r.get('pipe_hr3f'))} | {r['t']:.3f} |")
    if rows:
        mean = {k: np.nanmean([r.get(k, np.nan) for r in rows]) for k in keys + ("pipe_hr3f",)}
        print("| **mean** | | " + " | ".join(_f(mean[k]) for k in keys)
              + f" | | {_f(mean['pipe_hr3f'])} | |")


def evaluate(items: list[dict], before) -> list[dict]:
    rows = []
    for it in items:
        inp = it["inp"]
        spans, conf, sec = run_sections(inp)
        sc = score_sections(it["ref_intervals"], it["ref_labels"], spans, inp["duration"])
        row = dict(name=it["name"], dur=inp["duration"], n=len(spans), t=sec, conf=conf, **sc)
        row["pipe_hr3f"] = score_sections(it["ref_intervals"], it["ref_labels"],
                                          inp["analysis"].sections, inp["duration"])["hr3f"]
        if before is not None:
            b = score_sections(it["ref_intervals"], it["ref_labels"], run_before(before, inp),
                               inp["duration"])
            row.update(b_hr3f=b["hr3f"], b_label_acc=b["label_acc"], b_pairwise_f=b["pairwise_f"])
        elif it["name"] in BEFORE:
            row.update(zip(("b_hr3f", "b_label_acc", "b_pairwise_f"), BEFORE[it["name"]]))
        rows.append(row)
    return rows


def time_sections(inp: dict, repeat: int = 5) -> float:
    """Best-of-``repeat`` seconds of the section stage (structure, labels, confidence)."""
    return min(run_sections(inp)[2] for _ in range(repeat))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(ROOT.parent / "shared" / "data"))
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--no-loo", action="store_true")
    args = ap.parse_args(argv)

    from beatframe.music.analysis import warm_up

    warm_up()
    before = before_module()
    real = real_section_items(Path(args.data))
    for it in real:
        it["inp"] = section_inputs(it)
    if real:
        print_table(f"Real recordings ({args.data})", evaluate(real, before))
    synth = [] if args.no_synth else synth_section_items()
    for it in synth:
        it["inp"] = section_inputs(it)
    if synth:
        print_table("Synthesized tracks (exact truth)", evaluate(synth, before))

    if len(real) >= 2 and not args.no_loo:
        print("\n## Leave-one-out over the real recordings (boundary HR3F)\n")
        print("| held out | tuned | SF_WEIGHT | PEAK_THRESHOLD | HR3F on the rest | HR3F held out "
              "| HR3F held out, defaults |")
        print("|---|---|---|---|---|---|---|")
        loo = leave_one_out(real)
        for r in loo:
            print(f"| {r['held']} | {r['what']} | {r['sf_weight']:.3f} | {r['threshold']:.3f} | "
                  f"{r['train']:.3f} | {r['test']:.3f} | {r['default']:.3f} |")
        for what in ("threshold", "weight+threshold"):
            sel = [r for r in loo if r["what"] == what]
            print(f"| **mean** | {what} | | | | {np.mean([r['test'] for r in sel]):.3f} | "
                  f"{np.mean([r['default'] for r in sel]):.3f} |")

    if real:
        print("\n## Frame-grid sensitivity (HR3F of the boundaries; snapping to downbeats kept)\n")
        print("| frames | " + " | ".join(it["name"] for it in real) + " | mean |")
        print("|---|" + "---|" * (len(real) + 1))
        sens = grid_sensitivity(real)
        for label, _ in GRIDS:
            vals = [sens[(label, it["name"])] for it in real]
            print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals)
                  + f" | {np.mean(vals):.3f} |")

    timed = [it for it in synth if it["name"].endswith("3min")] + real
    if timed:
        print("\n## Time of the section stage (structure + labels + confidence, warm, best of 5)\n")
        for it in timed:
            d = it["inp"]["duration"]
            s = time_sections(it["inp"])
            print(f"- {it['name']}: {d:.0f} s of audio, {s * 1000:.0f} ms "
                  f"({s / d * 180 * 1000:.0f} ms per 3 minutes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
