"""Loading and validating audio.

:func:`load_audio` decodes a file once (soundfile first: WAV, FLAC, OGG, MP3 with libsndfile
>= 1.1; librosa/audioread via ffmpeg as a fallback for anything else), mixes it to mono,
resamples it with soxr and refuses, with :class:`beatframe.infra.errors.BadInputError`, input that can
not make a Canvas: missing, empty or non-audio files, WAV headers that lie grossly about their
length, audio that is too long, too short or silent.
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from beatframe.infra.cachekeys import sha256_file
from beatframe.infra.errors import BadInputError

__all__ = ["AudioClip", "load_audio", "MIN_SECONDS", "SILENCE_DBFS"]

#: Shortest audio accepted (a Canvas needs at least a bar).
MIN_SECONDS = 2.0
#: Audio whose every sample is below this level is treated as silence.
SILENCE_DBFS = -60.0


@dataclass
class AudioClip:
    """Decoded mono audio and facts about its source file.

    Attributes
    ----------
    y : np.ndarray
        Mono float32 samples at ``sample_rate``.
    sample_rate : int
        Sample rate of ``y``.
    native_sample_rate : int
        Sample rate of the file.
    channels : int
        Channel count of the file.
    duration : float
        Seconds of audio.
    sha256 : str
        Hex SHA-256 of the file's bytes.
    path : str
        Where it was loaded from.
    """

    y: np.ndarray
    sample_rate: int
    native_sample_rate: int
    channels: int
    duration: float
    sha256: str
    path: str = ""


def _wav_header_problem(path: Path, size: int) -> str | None:
    """Return a description if a RIFF/WAVE header grossly misstates its data size, else None.

    Streaming writers leave sizes of 0 or 0xFFFFFFFF; those are accepted. A data chunk that
    claims more than 1.5x the bytes that follow it (plus 64 KiB) is refused: a header that
    claims two hours for one second of data is corrupt, not merely truncated.
    """
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RIFX") or head[8:12] != b"WAVE":
            return None
        endian = "<" if head[:4] == b"RIFF" else ">"
        byte_rate = None
        pos = 12
        while pos + 8 <= size:
            f.seek(pos)
            ck = f.read(8)
            if len(ck) < 8:
                break
            cid, csize = ck[:4], struct.unpack(endian + "I", ck[4:])[0]
            if cid == b"fmt ":
                fmt = f.read(min(csize, 16))
                if len(fmt) >= 12:
                    byte_rate = struct.unpack(endian + "I", fmt[8:12])[0]
            if cid == b"data":
                actual = size - (pos + 8)
                if csize in (0, 0xFFFFFFFF) or actual < 0:
                    return None
                if csize > 1.5 * actual + 65536:
                    if byte_rate:
                        return (f"corrupt WAV header: it claims {csize / byte_rate:.1f} s of audio "
                                f"but the file holds {actual / byte_rate:.1f} s")
                    return (f"corrupt WAV header: data chunk claims {csize} bytes "
                            f"but only {actual} follow")
                return None
            pos += 8 + csize + (csize & 1)
    return None


def _decode(path: Path) -> tuple[np.ndarray, int, int]:
    """Decode to (float32 array of shape (frames, channels), sample rate, channels)."""
    import soundfile as sf

    sf_error: Exception | None = None
    try:
        with sf.SoundFile(str(path)) as snd:
            sr, ch = int(snd.samplerate), int(snd.channels)
            data = snd.read(dtype="float32", always_2d=True)
        return data, sr, ch
    except Exception as exc:  # libsndfile: unknown format, truncated, ...
        sf_error = exc

    # Fallback: audioread (ffmpeg) through librosa, for formats libsndfile lacks (m4a, aac...).
    try:
        import audioread

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with audioread.audio_open(str(path)) as af:
                sr, ch = int(af.samplerate), int(af.channels)
                chunks = [np.frombuffer(buf, dtype="<i2") for buf in af]
        if not chunks or sr <= 0 or ch <= 0:
            raise ValueError("no audio stream")
        pcm = np.concatenate(chunks).astype(np.float32) / 32768.0
        pcm = pcm[: len(pcm) // ch * ch].reshape(-1, ch)
        return pcm, sr, ch
    except Exception:
        pass
    raise BadInputError(f"not a readable audio file: {path} ({_short(sf_error)})")


def _short(exc: Exception | None) -> str:
    if exc is None:
        return "unknown format"
    msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
    if "Error opening" in msg and ":" in msg:
        msg = msg.split(":", 1)[-1].strip()
    return msg[:160]


def resample(y: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample mono audio with soxr (librosa ``soxr_hq``), falling back to polyphase."""
    if orig_sr == target_sr:
        return y
    import librosa

    try:
        out = librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="soxr_hq")
    except Exception:
        out = librosa.resample(y, orig_sr=orig_sr, target_sr=target_sr, res_type="polyphase")
    return np.ascontiguousarray(out, dtype=np.float32)


def load_audio(path: str | Path, *, sample_rate: int = 22050, max_seconds: float = 1200,
               min_seconds: float = MIN_SECONDS) -> AudioClip:
    """Load, validate, mix to mono and resample an audio file.

    Parameters
    ----------
    path : str or Path
    sample_rate : int
        Target sample rate of ``AudioClip.y``.
    max_seconds : float
        Longest audio accepted.
    min_seconds : float
        Shortest audio accepted (default 2 s).

    Returns
    -------
    AudioClip

    Raises
    ------
    BadInputError
        Missing file, a directory, an empty or non-audio file, a corrupt header, audio that is
        too long, too short, or silent (every sample below -60 dBFS).
    """
    p = Path(path)
    if not p.exists():
        raise BadInputError(f"audio file not found: {p}")
    if p.is_dir():
        raise BadInputError(f"expected an audio file but got a directory: {p}")
    size = p.stat().st_size
    if size == 0:
        raise BadInputError(f"audio file is empty (0 bytes): {p}")
    problem = _wav_header_problem(p, size)
    if problem:
        raise BadInputError(f"{problem}: {p}")

    # Refuse overlong audio before decoding it, where the header says how long it is.
    try:
        import soundfile as sf

        info = sf.info(str(p))
        if info.samplerate > 0 and info.frames > 0 and info.frames / info.samplerate > max_seconds:
            raise BadInputError(f"audio is too long ({info.frames / info.samplerate:.0f} s; "
                                f"the limit is {max_seconds:.0f} s): {p}")
    except BadInputError:
        raise
    except Exception:
        pass

    data, native_sr, channels = _decode(p)
    if data.size == 0 or native_sr <= 0:
        raise BadInputError(f"audio file holds no samples: {p}")
    if not np.all(np.isfinite(data)):
        data = np.nan_to_num(data, nan=0.0, posinf=0.0, neginf=0.0)
    duration = data.shape[0] / float(native_sr)
    if duration > max_seconds:
        raise BadInputError(f"audio is too long ({duration:.0f} s; the limit is "
                            f"{max_seconds:.0f} s): {p}")
    if duration < min_seconds:
        raise BadInputError(f"audio is too short ({duration:.2f} s; at least {min_seconds:g} s "
                            f"is needed for a bar): {p}")
    peak = float(np.max(np.abs(data)))
    if peak < 10.0 ** (SILENCE_DBFS / 20.0):
        level = 20 * np.log10(peak) if peak > 0 else -np.inf
        raise BadInputError(f"audio is silent (peak {level:.0f} dBFS, below "
                            f"{SILENCE_DBFS:.0f} dBFS): {p}")

    y = data.mean(axis=1) if channels > 1 else data[:, 0]
    y = np.ascontiguousarray(y, dtype=np.float32)
    y = resample(y, native_sr, int(sample_rate))
    return AudioClip(
        y=y,
        sample_rate=int(sample_rate),
        native_sample_rate=int(native_sr),
        channels=int(channels),
        duration=float(duration),
        sha256=sha256_file(p),
        path=str(p),
    )


def clip_from_array(y: np.ndarray, sample_rate: int, *, sha256: str | None = None,
                    channels: int = 1) -> AudioClip:
    """Wrap in-memory mono samples as an :class:`AudioClip` (for synthesized audio and tests)."""
    y = np.ascontiguousarray(np.asarray(y, dtype=np.float32).reshape(-1))
    if sha256 is None:
        sha256 = hashlib.sha256(y.tobytes()).hexdigest()
    return AudioClip(y=y, sample_rate=int(sample_rate), native_sample_rate=int(sample_rate),
                     channels=int(channels), duration=len(y) / float(sample_rate), sha256=sha256)
