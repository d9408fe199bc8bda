import pytest

from beatframe.infra.errors import BadInputError
from beatframe.music.templates import list_templates, load_template
from beatframe.models.prompting import (
    CANVAS_NEGATIVES,
    SECTION_MOODS,
    check_generation_params,
    colour_name,
    negative_prompt,
    palette_words,
    shot_prompt,
)

TEMPLATES = [t.name for t in list_templates()]


@pytest.mark.parametrize("section", list(SECTION_MOODS))
def test_prompt_carries_the_section_mood(section):
    prompt = shot_prompt(template="neon-pulse", section=section, energy=0.5)
    assert SECTION_MOODS[section][1:] in prompt


@pytest.mark.parametrize("energy,word", [(0.0, "calm"), (0.2, "calm"), (0.35, "driving"), (0.5, "driving"),
                                         (0.7, "explosive"), (1.0, "explosive")])
def test_energy_sets_the_pace(energy, word):
    prompt = shot_prompt(template="sunset-waves", section="chorus", energy=energy)
    assert word in prompt
    assert sum(w in prompt for w in ("calm", "driving", "explosive")) == 1


@pytest.mark.parametrize("name", TEMPLATES)
def test_user_prompt_comes_first_then_the_template(name):
    template = load_template(name)
    user = "A lone dancer on a rooftop at night"
    prompt = shot_prompt(template=template, section="drop", energy=0.9, user_prompt=user + ".")
    assert prompt.startswith(user + ". ")
    assert template.description.rstrip(".") in prompt
    assert palette_words(template) in prompt
    assert prompt.index(user) < prompt.index(template.description[:20]) < prompt.index("The drop")
    # the same template by name, by object and by data gives the same prompt
    assert prompt == shot_prompt(template=name, section="drop", energy=0.9, user_prompt=user)
    assert prompt == shot_prompt(template=template.model_dump(), section="drop", energy=0.9, user_prompt=user)


def test_template_without_description_uses_its_title():
    template = load_template("mono-grid").model_copy(update={"description": ""})
    prompt = shot_prompt(template=template, section="verse", energy=0.4)
    assert prompt.startswith("Mono Grid. ")
    assert "retro perspective grid" in prompt


def test_palette_in_colour_words():
    assert palette_words(load_template("mono-grid")) == "black, white and red"
    assert "magenta" in palette_words(load_template("neon-pulse"))
    assert "cyan" in palette_words(load_template("neon-pulse"))
    assert colour_name("#000000") == "black"
    assert colour_name("#ffffff") == "white"
    assert colour_name("#808080") == "grey"
    assert colour_name("#ff0000") == "red"
    assert colour_name("#1b0b2e") == "deep purple"


@pytest.mark.parametrize("section", ["Chorus", " PRE CHORUS ", "pre_chorus", "prechorus"])
def test_section_labels_are_normalized(section):
    assert shot_prompt(template="neon-pulse", section=section, energy=0.5)


@pytest.mark.parametrize("kwargs,match", [
    (dict(section="solo"), "section must be one of"),
    (dict(section=3), "section must be one of"),
    (dict(energy=-0.01), "energy"),
    (dict(energy=1.01), "energy"),
    (dict(energy=float("nan")), "energy"),
    (dict(energy=True), "energy"),
    (dict(user_prompt="  "), "user_prompt"),
    (dict(user_prompt="x" * 2001), "user_prompt"),
    (dict(template="no-such-template"), "unknown template"),
    (dict(template=42), "template"),
])
def test_shot_prompt_bad_input(kwargs, match):
    args = dict(template="neon-pulse", section="chorus", energy=0.5)
    args.update(kwargs)
    with pytest.raises(BadInputError, match=match):
        shot_prompt(**args)


def test_default_negative_prompt_has_canvas_rules_and_the_reference_default():
    neg = negative_prompt(template="neon-pulse")
    terms = neg.split(", ")
    for term in ("text", "logo", "singing face", "lip-syncing mouth", "blurry", "low quality"):
        assert term in terms
    assert terms[-2:] == ["blurry", "low quality"]


def test_user_negative_comes_first_and_cannot_drop_the_rules():
    neg = negative_prompt(template="neon-pulse", user_negative="people, Text ,  cars")
    terms = neg.split(", ")
    assert terms[:3] == ["people", "Text", "cars"]
    assert [t.lower() for t in terms].count("text") == 1  # one each, the user's spelling
    assert set(CANVAS_NEGATIVES) - {"text"} <= set(terms)


def test_negative_prompt_follows_the_palette():
    assert "rainbow colours" in negative_prompt(template="mono-grid")
    assert "washed-out colours" in negative_prompt(template="sunset-waves")
    assert "rainbow colours" not in negative_prompt(template="sunset-waves")


@pytest.mark.parametrize("user_negative", ["", "   ", "x" * 2001])
def test_negative_prompt_bad_input(user_negative):
    with pytest.raises(BadInputError, match="user_negative"):
        negative_prompt(template="neon-pulse", user_negative=user_negative)


@pytest.mark.parametrize("guidance,steps,seed", [(1, 10, 0), (20.0, 150, 2**32 - 1), (7.5, 50, None), (5, 40, 42)])
def test_generation_params_in_range(guidance, steps, seed):
    assert check_generation_params(guidance_scale=guidance, num_inference_steps=steps, seed=seed) == (
        float(guidance), steps, seed)


@pytest.mark.parametrize("guidance,steps,seed,field", [
    (0.99, 50, 0, "guidance_scale"),
    (20.01, 50, 0, "guidance_scale"),
    (float("nan"), 50, 0, "guidance_scale"),
    ("7.5", 50, 0, "guidance_scale"),
    (7.5, 9, 0, "num_inference_steps"),
    (7.5, 151, 0, "num_inference_steps"),
    (7.5, 50.0, 0, "num_inference_steps"),
    (7.5, True, 0, "num_inference_steps"),
    (7.5, 50, -1, "seed"),
    (7.5, 50, 2**32, "seed"),
    (7.5, 50, 1.5, "seed"),
    (7.5, 50, False, "seed"),
])
def test_generation_params_out_of_range_name_the_field(guidance, steps, seed, field):
    with pytest.raises(BadInputError, match=f"^{field} "):
        check_generation_params(guidance_scale=guidance, num_inference_steps=steps, seed=seed)
