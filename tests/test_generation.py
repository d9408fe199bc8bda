"""Prompt generation's plain logic (beatframe.music.generation): frame sizes, the prompt's style, the plan
and its pulse, the reference API's ranges (the flow runs end to end in tests/test_api_generate.py)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from beatframe.infra.errors import BadInputError
from beatframe.music.generation import (GenerationRequest, frame_size, generation_timeline, plan_generation,
                                  style_for)


@pytest.mark.parametrize("resolution, ratio, size", [
    ("480p", "16:9", (854, 480)), ("720p", "16:9", (1280, 720)), ("720p", "9:16", (720, 1280)),
    ("1080p", "1:1", (1080, 1080)), ("1080p", "4:3", (1440, 1080)), ("4k", "16:9", (3840, 2160)),
    ("8k", "16:9", (7680, 4320)),
])
def test_frame_sizes_keep_the_short_side_and_even_dimensions(resolution, ratio, size):
    assert frame_size(resolution=resolution, aspect_ratio=ratio) == size


@pytest.mark.parametrize("prompt, genre, template, word", [
    ("A neon tunnel at night", "cinematic", "neon-pulse", "neon"),  # the prompt's first scene word wins
    ("Night sky over a neon city", "pop", "aurora-particles", "night"),
    ("Waves crashing on the BEACH", "techno", "sunset-waves", "waves"),
    ("a portrait of a cat", "Hip-Hop", "mono-grid", None),  # no scene word: the genre's look
    ("a portrait of a cat", "polka", "aurora-particles", None),  # an unknown genre: cinematic
])
def test_the_prompt_picks_the_scene_else_the_genre(prompt, genre, template, word):
    chosen, bpm, matched, _ = style_for(prompt=prompt, genre=genre)
    assert (chosen, matched) == (template, word) and 60 <= bpm <= 150


def test_the_plan_and_its_pulse():
    request = GenerationRequest(prompt="ocean at dusk", duration_seconds=6, fps=30, resolution="720p",
                                aspect_ratio="9:16", genre="edm")
    plan = plan_generation(request, seed=11)
    assert (plan.size, plan.n_frames, plan.bpm, plan.template) == ((720, 1280), 180, 128.0, "sunset-waves")
    timeline = generation_timeline(plan)
    assert np.allclose(np.diff(timeline.beats), 60 / 128) and timeline.downbeats == timeline.beats[::4]
    assert not timeline.periodic and timeline.energy.shape == (180,) and 0 <= timeline.energy.min()
    assert np.array_equal(timeline.energy, generation_timeline(plan).energy)  # deterministic
    with pytest.raises(BadInputError, match="procedural, up to 4096 px"):
        plan_generation(request.model_copy(update={"resolution": "8k"}), seed=1)


@pytest.mark.parametrize("field, value", [
    ("duration_seconds", 0.99), ("duration_seconds", 60.01), ("fps", 11), ("fps", 61), ("resolution", "2k"),
    ("aspect_ratio", "21:9"), ("guidance_scale", 0.9), ("guidance_scale", 20.1), ("num_inference_steps", 9),
    ("num_inference_steps", 151), ("prompt", ""), ("prompt", "\n\t "), ("seed", 2**32), ("genre", ""),
])
def test_the_reference_ranges(field, value):
    with pytest.raises(ValidationError):
        GenerationRequest.model_validate({"prompt": "x", field: value})


def test_the_reference_defaults():
    request = GenerationRequest(prompt="x")
    assert (request.duration_seconds, request.fps, request.resolution, request.aspect_ratio, request.genre,
            request.guidance_scale, request.num_inference_steps, request.negative_prompt) == (
        4.0, 24, "720p", "16:9", "cinematic", 7.5, 50, "blurry, low quality")
