import hashlib

import numpy as np
import pytest
from scipy.signal import find_peaks

from beatframe.infra.errors import BadInputError
from beatframe.music.templates import list_templates, load_template
from beatframe.models.motion import envelopes, grid_timeline, integrate, shot_index, value_envelope
from beatframe.models.procedural import ProceduralGenerator
from beatframe.models.registry import GENERATORS, get_generator

SIZE = (90, 160)
NAMES = [t.name for t in list_templates()]


def render(name, seed=7, tl=None, cut=False, size=SIZE):
    tl = tl or grid_timeline(120, bars=1, onsets=np.arange(16) * 0.25)
    return list(ProceduralGenerator().render(timeline=tl, template=name, size=size, seed=seed,
                                             cut_on_downbeats=cut))


def gray(frames):
    f = np.asarray(frames, dtype=np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def hashes(frames):
    return [hashlib.sha256(f.tobytes()).hexdigest() for f in frames]


def seam_ratio(frames, fps=30):
    """vidcheck's loop_seam: last->first step on z-normalized frames vs the clip's own steps."""
    g = gray(frames)
    z = (g - g.mean(axis=(1, 2), keepdims=True)) / (g.std(axis=(1, 2), keepdims=True) + 1e-6)
    dz = np.abs(np.diff(z, axis=0)).mean(axis=(1, 2))
    d = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))
    pk = accent_frames(d, fps)
    ref = max(float(np.median(dz)), float(np.percentile(dz[pk], 90)) if len(pk) >= 2 else 0.0)
    return float(np.abs(z[0] - z[-1]).mean()) / ref


def accent_frames(d, fps=30):
    prom = 0.25 * (np.percentile(d, 99) - np.percentile(d, 10))
    pk, _ = find_peaks(d, prominence=max(prom, 1e-6), distance=max(1, int(fps * 0.15)))
    return pk


def beat_f(frames, beats, fps=30):
    d = np.abs(np.diff(gray(frames), axis=0)).mean(axis=(1, 2))
    vis = accent_frames(d, fps) / fps
    ref = np.asarray([b for b in beats if b > 0])  # an accent on frame 0 has no left neighbour
    tol = max(0.07, 1.5 / fps)
    rec = np.mean([np.any(np.abs(vis - r) <= tol) for r in ref])
    prec = np.mean([np.any(np.abs(ref - v) <= tol) for v in vis]) if len(vis) else 0.0
    return 2 * rec * prec / (rec + prec) if rec + prec else 0.0


@pytest.mark.parametrize("name", NAMES)
def test_frames_shape_dtype_count(name):
    tl = grid_timeline(120, bars=1)
    fr = render(name, tl=tl)
    assert len(fr) == tl.n_frames
    for f in fr[:3]:
        assert f.shape == (SIZE[1], SIZE[0], 3) and f.dtype == np.uint8 and f.flags.c_contiguous


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_for_a_seed(name):
    a, b, c = render(name, seed=3), render(name, seed=3), render(name, seed=4)
    assert hashes(a) == hashes(b)
    assert hashes(a) != hashes(c)


@pytest.mark.parametrize("name", NAMES)
def test_loop_is_seamless(name):
    assert seam_ratio(render(name)) <= 1.5


@pytest.mark.parametrize("name", NAMES)
def test_accents_land_on_beats(name):
    tl = grid_timeline(120, bars=2, onsets=np.arange(32) * 0.125)  # onsets off the beat too
    assert beat_f(render(name, tl=tl), tl.beats) >= 0.8


@pytest.mark.parametrize("bpm", [90, 150])
def test_accents_land_on_beats_other_tempi(bpm):
    tl = grid_timeline(bpm, bars=2)
    assert beat_f(render("neon-pulse", tl=tl), tl.beats) >= 0.8


@pytest.mark.parametrize("name", NAMES)
def test_no_big_luminance_swings(name):
    """Beat pulses are geometric: mean linear luminance per quarter moves < 0.1 frame to frame."""
    f = np.asarray(render(name), dtype=np.float32) / 255.0
    lin = np.where(f <= 0.04045, f / 12.92, ((f + 0.055) / 1.055) ** 2.4)
    L = lin @ np.float32([0.2126, 0.7152, 0.0722])
    H, W = L.shape[1:]
    for r in [L] + [L[:, i * H // 2:(i + 1) * H // 2, j * W // 2:(j + 1) * W // 2] for i in (0, 1) for j in (0, 1)]:
        m = r.mean(axis=(1, 2))
        assert np.max(np.abs(np.diff(np.append(m, m[0])))) < 0.1


def test_templates_look_different():
    means = {}
    for name in NAMES:
        fr = np.asarray(render(name)[::6], dtype=np.float32)
        hist = np.concatenate([np.histogram(fr[..., c], bins=16, range=(0, 256))[0] for c in range(3)])
        means[name] = (fr.mean(axis=(0, 1, 2)), hist / hist.sum())
    for i, a in enumerate(NAMES):
        for b in NAMES[i + 1:]:
            col = np.abs(means[a][0] - means[b][0]).max()
            hist = 0.5 * np.abs(means[a][1] - means[b][1]).sum()
            assert col > 12 or hist > 0.2, (a, b, col, hist)


@pytest.mark.parametrize("name", NAMES)
def test_cut_on_downbeats(name):
    tl = grid_timeline(120, bars=2)
    cut = render(name, tl=tl, cut=True)
    assert len(cut) == tl.n_frames
    g = gray(cut)
    j = round(tl.downbeats[1] * tl.fps)
    # the cut is a big change, across the downbeat only
    d = np.abs(np.diff(g, axis=0)).mean(axis=(1, 2))
    assert d[j] > 2 * np.median(d)
    assert seam_ratio(cut) <= 1.5
    assert beat_f(cut, tl.beats) >= 0.8


def test_non_periodic_and_full_size():
    tl = grid_timeline(120, bars=1, periodic=False)
    fr = render("sunset-waves", tl=tl, size=(720, 1280))
    assert len(fr) == tl.n_frames and fr[0].shape == (1280, 720, 3)


def test_bad_size_and_template():
    with pytest.raises(BadInputError):
        ProceduralGenerator().render(timeline=grid_timeline(), template="neon-pulse", size=(0, 10), seed=1)
    with pytest.raises(BadInputError):
        ProceduralGenerator().render(timeline=grid_timeline(), template="nope", size=SIZE, seed=1)


def test_template_object_accepted():
    t = load_template("mono-grid")
    a = render(t)
    assert hashes(a) == hashes(render("mono-grid"))


def test_registry():
    assert {"procedural", "cover-art"} <= set(GENERATORS)
    g = get_generator("procedural")
    assert g.name == "procedural" and g.revision
    with pytest.raises(BadInputError):
        get_generator("nope")


# ----------------------------------------------------------------------------- motion envelopes
def test_envelope_timing_convention():
    tl = grid_timeline(120, bars=1)  # beats at frames 0, 15, 30, 45
    env = envelopes(tl)
    for b in tl.beats:
        j = round(b * tl.fps)
        k = env.kick
        assert k[(j + 1) % tl.n_frames] - k[j] > 0.5  # the jump is j -> j+1
        assert np.argmax(env.rush[j:j + 5]) == 0     # the rush step is j -> j+1
    # a downbeat is stronger than a beat, a beat keeps >= 0.6 of it
    assert env.kick[1] > env.kick[16] >= 0.6 * env.kick[1]


def test_envelopes_wrap_when_periodic():
    tl = grid_timeline(120, bars=1, offset=1.9)  # beats late in the clip wrap to the start
    v = value_envelope([1.95], tl, 0.2)
    assert v[0] > 0.1 and v[1] > 0.05
    p = integrate(np.full(tl.n_frames, 0.37), tl)
    total = p[-1] + (p[1] - p[0])  # the phase back at frame 0 after one loop
    assert abs(total - round(total)) < 1e-9 and round(total) >= 1


def test_shot_index_wraps():
    tl = grid_timeline(120, bars=2)  # downbeats at frames 0 and 60
    s = shot_index(tl)
    assert s[0] == s[-1] == 1 and s[1] == 0 and s[60] == 0 and s[61] == 1
