import re

import pytest

from beatframe.infra.errors import BadInputError
from beatframe.music.templates import (
    LOOP_MODES,
    SCENES,
    Template,
    list_templates,
    load_template,
    parse_template,
)


def test_at_least_four_builtins_each_different():
    ts = list_templates()
    assert len(ts) >= 4
    assert [t.name for t in ts] == sorted(t.name for t in ts)
    assert len({t.scene for t in ts}) >= 4, "built-ins should cover different scenes"
    assert len({t.palette for t in ts}) == len(ts)


@pytest.mark.parametrize("name", [t.name for t in list_templates()])
def test_each_builtin_loads_and_validates(name):
    t = load_template(name)
    assert isinstance(t, Template)
    assert t.name == name
    assert t.license == "CC0-1.0"
    assert t.scene in SCENES
    assert t.default_loop in LOOP_MODES
    assert t.title and t.description
    assert all(re.fullmatch(r"#[0-9a-f]{6}", c) for c in t.palette)
    assert len(t.palette_rgb) == len(t.palette)
    # every beat must stay a visible accent: ordinary beats >= 0.6 of a downbeat
    assert t.intensity.beat_pulse >= 0.6 * t.intensity.downbeat_pulse
    assert set(t.cover.effects) <= {"zoom", "pan", "parallax", "glitch"}
    # round trip through JSON keeps the fingerprint
    assert Template.model_validate_json(t.model_dump_json()).fingerprint() == t.fingerprint()


def test_unknown_template_lists_known_names():
    with pytest.raises(BadInputError) as e:
        load_template("no-such-template")
    msg = str(e.value)
    assert "no-such-template" in msg
    for t in list_templates():
        assert t.name in msg
    assert "\n" not in msg


def test_fingerprint_is_stable_and_content_sensitive():
    a = load_template("neon-pulse")
    assert re.fullmatch(r"[0-9a-f]{64}", a.fingerprint())
    assert a.fingerprint() == load_template("neon-pulse").fingerprint()
    fps = {t.fingerprint() for t in list_templates()}
    assert len(fps) == len(list_templates())
    b = a.model_copy(update={"motion": a.motion.model_copy(update={"speed": a.motion.speed + 0.1})})
    assert b.fingerprint() != a.fingerprint()


GOOD = """
name = "my-style"
title = "Mine"
palette = ["#000000", "#FFFFFF"]
scene = "grid"
"""


def test_parse_minimal_template_with_defaults():
    t = parse_template(GOOD)
    assert t.palette == ("#000000", "#ffffff")
    assert t.default_loop == "continuous"
    assert t.version == "1"


@pytest.mark.parametrize("bad", [
    GOOD.replace('"grid"', '"volcano"'),
    GOOD.replace('"#FFFFFF"', '"white"'),
    GOOD.replace('"my-style"', '"My Style"'),
    GOOD + 'default_loop = "sideways"\n',
    GOOD + "[motion]\nspeed = -1\n",
    GOOD + "unknown_field = 1\n",
    "name = ",
])
def test_bad_templates_are_bad_input(bad):
    with pytest.raises(BadInputError):
        parse_template(bad, "x.toml")
