"""Loading and validating audio (beatframe.music.audio) and the synthesizer (beatframe.music.synth)."""

from __future__ import annotations

import hashlib
import struct
import time

import numpy as np
import pytest
import soundfile as sf

from beatframe.music.audio import AudioClip, load_audio
from beatframe.infra.cachekeys import sha256_file
from beatframe.infra.errors import BadInputError
from beatframe.music.synth import DEFAULT_SECTIONS, demo_track, synthesize_track, write_wav

SR = 22050


@pytest.fixture(scope="module")
def short_track():
    return synthesize_track(bpm=120, sections=[("verse", 3, 0.6)], seed=1)


def test_synth_is_deterministic_and_truthful(short_track):
    again = synthesize_track(bpm=120, sections=[("verse", 3, 0.6)], seed=1)
    assert np.array_equal(short_track.y, again.y)
    assert short_track.y.dtype == np.float32
    assert np.max(np.abs(short_track.y)) <= 1.0
    assert len(short_track.beats) == 12 and len(short_track.downbeats) == 3
    assert np.allclose(np.diff(short_track.beats), 0.5)
    assert set(np.round(short_track.downbeats, 6)) <= set(np.round(short_track.beats, 6))
    assert short_track.sections[0][0] == 0.0
    assert abs(short_track.sections[-1][1] - short_track.duration) < 1e-3
    other = synthesize_track(bpm=120, sections=[("verse", 3, 0.6)], seed=2)
    assert not np.array_equal(short_track.y, other.y)


def test_synth_default_length_speed_and_options():
    t0 = time.perf_counter()
    full = synthesize_track()
    elapsed = time.perf_counter() - t0
    assert 170 < full.duration < 190
    assert elapsed < 3.0  # < 1 s on an idle core; slack for loaded CI machines
    assert sum(b for _, b, _ in DEFAULT_SECTIONS) * 4 == len(full.grid)
    demo = demo_track()
    assert 35 < demo.duration < 45 and demo.vocals
    ramp = synthesize_track(bpm=100, bpm_end=130, sections=[("verse", 8, 0.6)])
    ibi = np.diff(ramp.beats)
    assert ibi[0] > ibi[-1] and abs(60 / ibi[-1] - 130) < 2
    gap = synthesize_track(sections=[("verse", 2, 0.6), ("silence", 2, 0.0), ("verse", 2, 0.6)])
    s0, s1, label = gap.sections[1]
    assert label == "silence"
    assert np.max(np.abs(gap.y[int(s0 * SR) + 2000:int(s1 * SR)])) == 0.0
    assert len(gap.beats) == 16 and len(gap.grid) == 24


def test_load_wav_roundtrip(tmp_path, short_track):
    path = write_wav(tmp_path / "song.wav", short_track)
    clip = load_audio(path)
    assert isinstance(clip, AudioClip)
    assert clip.sample_rate == SR and clip.native_sample_rate == SR and clip.channels == 1
    assert clip.y.dtype == np.float32 and clip.y.ndim == 1
    assert abs(clip.duration - short_track.duration) < 1e-3
    assert clip.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() == sha256_file(path)
    assert np.max(np.abs(clip.y - short_track.y)) < 1e-3  # 16-bit quantization only


def test_load_stereo_44k_resamples(tmp_path, short_track):
    import librosa

    y44 = librosa.resample(short_track.y, orig_sr=SR, target_sr=44100)
    stereo = np.stack([y44, 0.5 * y44], axis=1)
    path = tmp_path / "stereo.flac"
    sf.write(path, stereo, 44100)
    clip = load_audio(path)
    assert clip.channels == 2 and clip.native_sample_rate == 44100 and clip.sample_rate == SR
    assert abs(len(clip.y) / SR - short_track.duration) < 0.01
    assert abs(clip.duration - short_track.duration) < 0.01


def _expect_bad(path, *words, **kwargs):
    with pytest.raises(BadInputError) as err:
        load_audio(path, **kwargs)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(path) in msg
    for w in words:
        assert w in msg.lower()
    return msg


def test_missing_file(tmp_path):
    _expect_bad(tmp_path / "nope.wav", "not found")


def test_directory(tmp_path):
    _expect_bad(tmp_path, "directory")


def test_empty_file(tmp_path):
    p = tmp_path / "empty.wav"
    p.write_bytes(b"")
    _expect_bad(p, "empty")


@pytest.mark.parametrize("content", [
    b"This is not audio, just a text file renamed to .wav\n" * 50,
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 40,
])
def test_non_audio_bytes(tmp_path, content):
    p = tmp_path / "fake.wav"
    p.write_bytes(content)
    _expect_bad(p, "not a readable audio file")


def test_wav_header_that_lies(tmp_path):
    pcm = (np.sin(np.arange(SR) * 0.1) * 10000).astype("<i2").tobytes()  # 1 s of audio
    claimed = 2 * 3600 * SR * 2  # two hours
    header = (b"RIFF" + struct.pack("<I", 36 + claimed) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16)
              + b"data" + struct.pack("<I", claimed))
    p = tmp_path / "liar.wav"
    p.write_bytes(header + pcm)
    msg = _expect_bad(p, "corrupt")
    assert "7200" in msg


def test_too_long(tmp_path):
    p = tmp_path / "long.wav"
    sf.write(p, np.full(SR * 12, 0.1, dtype=np.float32), SR)
    _expect_bad(p, "too long", max_seconds=10)


def test_too_short(tmp_path):
    p = tmp_path / "short.wav"
    t = synthesize_track(sections=[("verse", 1, 0.6)], offset=0.0, tail=0.0)
    sf.write(p, t.y[: int(1.5 * SR)], SR)
    _expect_bad(p, "too short")


def test_silence(tmp_path):
    p = tmp_path / "silent.wav"
    rng = np.random.default_rng(0)
    sf.write(p, (rng.standard_normal(SR * 5) * 1e-4).astype(np.float32), SR)  # ~ -70 dBFS peaks
    _expect_bad(p, "silent")
    p2 = tmp_path / "zeros.wav"
    sf.write(p2, np.zeros(SR * 5, dtype=np.float32), SR, subtype="PCM_16")
    _expect_bad(p2, "silent")
