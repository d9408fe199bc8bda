"""The generative video models beatframe knows, as data: what each needs and what it delivers.

One frozen :class:`ModelSpec` per model: the task it does (``t2v`` text-to-video, ``i2v``
image-to-video), the generator in :mod:`beatframe.models.registry` that runs it, the folder its diffusers
weights are expected in under ``BEATFRAME_MODELS_DIR`` (the Hugging Face repository's name, so
``huggingface-cli download Wan-AI/<folder> --local-dir $BEATFRAME_MODELS_DIR/<folder>`` puts it
there), the GPU memory it needs, its native resolutions and frame rate, the longest clip it makes
in one pass, its licence and a quality rank. The CPU generators (``procedural`` for text,
``cover-art`` for an image) are in the catalog too, so a plan can always fall back to one of them.

Every model folder name is spelled here once: the Wan folders in the catalog (and which of them
each Wan generator loads by default, :data:`DEFAULT_WAN_FOLDERS`), and the folders of the diffusers
image pipelines post-production loads (:data:`IMG2IMG_FOLDER`, :data:`UPSCALER_FOLDER`,
:data:`INPAINT_FOLDER`).

Every figure is a *planning* figure: the VRAM and speed numbers come from the model cards, the
Wan READMEs and the diffusers docs where those publish one (the source is named beside each
number) and are estimated from the weights' sizes otherwise (said so beside the number). They
decide what to try, not what is guaranteed; measure on the target GPU before promising times.

Units. VRAM is in decimal gigabytes (1e9 bytes), as card makers and the Wan READMEs quote it: a
figure of 24 means "fits a card sold as 24 GB" (an RTX 4090 reports about 25.3e9 bytes free).
"Offload" means the diffusers pipeline keeps each component on the CPU until it runs and the text
encoder runs on the CPU (Wan's ``--offload_model True --t5_cpu``; diffusers'
``enable_model_cpu_offload``); it saves memory and costs time (:data:`OFFLOAD_SLOWDOWN`).

No environment variables are read here (:mod:`beatframe.models.orchestrator` reads ``BEATFRAME_MODELS_DIR``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from beatframe.infra.errors import BadInputError

#: Output resolutions the reference API names, as the 16:9 frame (width, height); the short side
#: is what counts for a 9:16 or 1:1 frame too.
RESOLUTIONS: dict[str, tuple[int, int]] = {
    "480p": (854, 480),
    "720p": (1280, 720),
    "1080p": (1920, 1080),
    "1440p": (2560, 1440),
    "4k": (3840, 2160),
    "8k": (7680, 4320),
}

#: Generation time multiplier when a model runs with CPU offload: every denoising pass waits for
#: weights to cross PCIe. A planning figure (diffusers' memory guide calls model offloading
#: "slower"; 25 % is the order seen for component-level offload of a one-transformer pipeline).
OFFLOAD_SLOWDOWN = 1.25

#: The largest frame side the pipeline writes (``beatframe.models.procedural.MAX_SIDE``); generative
#: models render smaller and are scaled up to the output size.
MAX_OUTPUT_SIDE = 4096

TASKS = ("t2v", "i2v")


@dataclass(frozen=True)
class NativeMode:
    """A resolution a model was trained for, and how fast it renders there.

    Attributes
    ----------
    resolution : str
        Its name in :data:`RESOLUTIONS` (``480p``, ``720p`` ...).
    width, height : int
        The landscape frame the model renders (Wan's 480p is 832x480; the TI2V-5B's 720p is
        1280x704); portrait swaps them.
    seconds_per_frame : float
        Planning figure: GPU seconds per output frame at the model's default step count, with the
        whole model resident (multiply by :data:`OFFLOAD_SLOWDOWN` when offloading).
    """

    resolution: str
    width: int
    height: int
    seconds_per_frame: float


@dataclass(frozen=True)
class ModelSpec:
    """One video model (or CPU generator) and what it takes to run it.

    Attributes
    ----------
    id : str
        Catalog id, e.g. ``wan2.1-t2v-1.3b``.
    tasks : tuple of str
        What it does: ``t2v`` (from a prompt) and/or ``i2v`` (from an image and a prompt).
    generators : tuple of (str, str)
        ``(task, registry name)`` pairs: the :mod:`beatframe.models.registry` generator that runs each task.
    folder : str or None
        Folder under ``BEATFRAME_MODELS_DIR`` holding its diffusers weights; None for the CPU
        generators, which need none.
    hub_repo : str or None
        Where the weights are published.
    vram_gb : float
        GPU memory (decimal GB, bf16) with every component resident on the GPU.
    vram_offload_gb : float
        GPU memory (decimal GB, bf16) with CPU offload.
    modes : tuple of NativeMode
        Native resolutions, smallest first.
    fps : int
        Native frame rate of its clips.
    max_frames : int or None
        The longest clip it makes in one pass; a longer shot is made of several clips. None: no
        limit.
    quality_rank : int
        1 is the best picture; equal ranks are the same network at different resolutions.
    license : str
        SPDX id of the weights' (or the code's) licence.
    renders_at_target : bool
        True for generators that draw straight at the output size (cost grows with the pixels);
        False for models that render a native mode and are scaled to the output size.
    """

    id: str
    tasks: tuple[str, ...]
    generators: tuple[tuple[str, str], ...]
    folder: str | None
    hub_repo: str | None
    vram_gb: float
    vram_offload_gb: float
    modes: tuple[NativeMode, ...]
    fps: int
    max_frames: int | None
    quality_rank: int
    license: str
    renders_at_target: bool = False

    @property
    def is_gpu(self) -> bool:
        return self.vram_gb > 0

    def generator_for(self, task: str) -> str:
        """The registry name of the generator that runs this model for ``task``."""
        for t, name in self.generators:
            if t == task:
                return name
        raise BadInputError(f"model {self.id} does not do {task!r}; it does {', '.join(self.tasks)}")

    @property
    def relative_speed(self) -> float:
        """Output frames per GPU second at its largest native mode, relative to Wan2.1-T2V-14B at 720p.

        A planning figure derived from ``seconds_per_frame`` (higher is faster); it compares the
        cost of a clip at each model's own best resolution, not at a common one.
        """
        return _REFERENCE_SECONDS_PER_FRAME / self.modes[-1].seconds_per_frame


def _wan(**kwargs) -> ModelSpec:
    return ModelSpec(license="Apache-2.0", **kwargs)


# Wan 2.1 and the Wan 2.2 A14B models render 16 fps clips of 81 frames (Wan's shared config:
# sample_fps = 16, frame_num = 81); the Wan2.2 TI2V-5B renders 24 fps clips of 121 frames
# (wan_ti2v_5B config: sample_fps = 24, frame_num = 121).
#
# Where the no-offload VRAM estimates come from: bf16 weights (2 bytes a parameter: 2.6 GB for
# 1.3B, 10 GB for 5B, 28 GB for 14B, 57 GB for the two A14B experts) plus the umT5-XXL text
# encoder (11.4 GB in bf16, shared by all Wan models), the VAE and the image encoder (I2V), plus
# activation and VAE-decode headroom for 81 frames (about 6 GB at 480p, 12 GB at 720p).
#
# Where the speed figures come from: the Wan2.1 README's "5-second 480P video on an RTX 4090 in
# about 4 minutes" for the 1.3B (240 s / 81 frames, with offload, so / 1.25 -> 2.4 s a frame);
# the Wan2.2 card's "5-second 720P video in under 9 minutes" on an RTX 4090 for the TI2V-5B
# (540 s / 121 frames, with offload -> 3.6 s); for the 14B models no number is published in text
# (the READMEs' efficiency tables are images): about 30 minutes for an 81-frame 720p clip on one
# 80 GB GPU is the usual report (22 s a frame), and a 480p clip has 2.3x fewer tokens, about
# 2.7x less work with attention (8 s). The A14B experts are each as large as the 2.1 14B ("14B
# active parameters per step", Wan2.2 README) and default to 40 steps instead of 50 (x0.8).
_REFERENCE_SECONDS_PER_FRAME = 22.0

CATALOG: tuple[ModelSpec, ...] = (
    _wan(
        id="wan2.1-t2v-1.3b",
        tasks=("t2v",),
        generators=(("t2v", "wan-t2v"),),
        folder="Wan2.1-T2V-1.3B-Diffusers",
        hub_repo="Wan-AI/Wan2.1-T2V-1.3B-Diffusers",
        vram_gb=20.0,  # estimate: 2.6 + 11.4 + VAE + 480p headroom
        # Wan2.1 README: "The T2V-1.3B model requires only 8.19 GB VRAM" (--offload_model True --t5_cpu,
        # 832x480, RTX 4090). The diffusers docs quote 11 GB with enable_model_cpu_offload and the text
        # encoder on the GPU; 8.2 holds when the text encoder runs on the CPU.
        vram_offload_gb=8.2,
        # Wan2.1 README: the 1.3B supports 480P; 720P works but is "less stable".
        modes=(NativeMode("480p", 832, 480, 2.4),),
        fps=16,
        max_frames=81,
        quality_rank=4,
    ),
    _wan(
        id="wan2.1-t2v-14b",
        tasks=("t2v",),
        generators=(("t2v", "wan-t2v"),),
        folder="Wan2.1-T2V-14B-Diffusers",
        hub_repo="Wan-AI/Wan2.1-T2V-14B-Diffusers",
        vram_gb=52.0,  # estimate: 28 + 11.4 + VAE + 720p headroom
        # diffusers Wan docs (v0.33): the 14B checkpoints need "at least 35GB VRAM" with model CPU offload.
        vram_offload_gb=35.0,
        modes=(NativeMode("480p", 832, 480, 8.0), NativeMode("720p", 1280, 720, 22.0)),
        fps=16,
        max_frames=81,
        quality_rank=2,
    ),
    _wan(
        id="wan2.2-ti2v-5b",
        tasks=("t2v", "i2v"),
        generators=(("t2v", "wan-t2v"), ("i2v", "wan-i2v")),
        folder="Wan2.2-TI2V-5B-Diffusers",
        hub_repo="Wan-AI/Wan2.2-TI2V-5B-Diffusers",
        vram_gb=35.0,  # estimate: 10 + 11.4 + Wan2.2 VAE + 720p/121-frame headroom
        # Wan2.2 README: with --offload_model True --convert_model_dtype --t5_cpu it "can run on a GPU
        # with at least 24GB VRAM (e.g, RTX 4090 GPU)".
        vram_offload_gb=24.0,
        # Wan2.2 README: "supports 720P", and its 720P is 1280*704 or 704*1280.
        modes=(NativeMode("720p", 1280, 704, 3.6),),
        fps=24,
        max_frames=121,
        quality_rank=3,
    ),
    _wan(
        id="wan2.2-t2v-a14b",
        tasks=("t2v",),
        generators=(("t2v", "wan-t2v"),),
        folder="Wan2.2-T2V-A14B-Diffusers",
        hub_repo="Wan-AI/Wan2.2-T2V-A14B-Diffusers",
        # estimate: both experts resident (57) + 11.4 + VAE + headroom; more than the 80 GB the
        # README quotes *with* offloading, so an 80 GB card runs it offloaded.
        vram_gb=96.0,
        # Wan2.2 README: with --offload_model True --convert_model_dtype "this command can run on a GPU
        # with at least 80GB VRAM" (1280*720).
        vram_offload_gb=80.0,
        modes=(NativeMode("480p", 832, 480, 6.5), NativeMode("720p", 1280, 720, 18.0)),
        fps=16,
        max_frames=81,
        quality_rank=1,
    ),
    _wan(
        id="wan2.1-i2v-14b-480p",
        tasks=("i2v",),
        generators=(("i2v", "wan-i2v"),),
        folder="Wan2.1-I2V-14B-480P-Diffusers",
        hub_repo="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers",
        vram_gb=48.0,  # estimate: 28 + 11.4 + CLIP image encoder + VAE + 480p headroom
        vram_offload_gb=35.0,  # diffusers Wan docs (v0.33): "at least 35GB VRAM" for the I2V 14B models
        modes=(NativeMode("480p", 832, 480, 8.5),),
        fps=16,
        max_frames=81,
        quality_rank=2,
    ),
    _wan(
        id="wan2.1-i2v-14b-720p",
        tasks=("i2v",),
        generators=(("i2v", "wan-i2v"),),
        folder="Wan2.1-I2V-14B-720P-Diffusers",
        hub_repo="Wan-AI/Wan2.1-I2V-14B-720P-Diffusers",
        vram_gb=54.0,  # estimate: as the 480p checkpoint, with 720p headroom
        vram_offload_gb=35.0,  # diffusers Wan docs (v0.33), as above
        modes=(NativeMode("720p", 1280, 720, 23.0),),
        fps=16,
        max_frames=81,
        quality_rank=2,
    ),
    _wan(
        id="wan2.2-i2v-a14b",
        tasks=("i2v",),
        generators=(("i2v", "wan-i2v"),),
        folder="Wan2.2-I2V-A14B-Diffusers",
        hub_repo="Wan-AI/Wan2.2-I2V-A14B-Diffusers",
        vram_gb=96.0,  # estimate, as the T2V A14B
        vram_offload_gb=80.0,  # Wan2.2 README: "at least 80GB VRAM" for i2v-A14B with offloading
        modes=(NativeMode("480p", 832, 480, 6.8), NativeMode("720p", 1280, 720, 19.0)),
        fps=16,
        max_frames=81,
        quality_rank=1,
    ),
    # The CPU generators draw any size up to MAX_OUTPUT_SIDE at the pipeline's 30 fps. Their speed is
    # measured on the 2-core development machine (benchmarks/RESULTS.md: 5340 1920x1080 frames in
    # 85 s with two shots at a time, 240 720x1280 frames in 5.6 s, encoding included), so about
    # 0.02 s a frame up to 1080p, growing with the pixel count above it.
    ModelSpec(
        id="procedural",
        tasks=("t2v",),
        generators=(("t2v", "procedural"),),
        folder=None,
        hub_repo=None,
        vram_gb=0.0,
        vram_offload_gb=0.0,
        modes=(NativeMode("1080p", 1920, 1080, 0.02),),
        fps=30,
        max_frames=None,
        quality_rank=5,
        license="Apache-2.0",
        renders_at_target=True,
    ),
)
# the cover-art generator animates an image on the same terms as the procedural one
CATALOG += (replace(next(spec for spec in CATALOG if spec.id == "procedural"), id="cover-art", tasks=("i2v",),
                     generators=(("i2v", "cover-art"),)),)

_BY_ID = {spec.id: spec for spec in CATALOG}

#: The CPU generator each task falls back to when no generative model can run.
CPU_FALLBACK = {"t2v": "procedural", "i2v": "cover-art"}

#: The folder each Wan generator loads when a choice names no model.
DEFAULT_WAN_FOLDERS = {"t2v": _BY_ID["wan2.1-t2v-1.3b"].folder, "i2v": _BY_ID["wan2.1-i2v-14b-480p"].folder}

# The diffusers image pipelines of post-production, by folder under BEATFRAME_MODELS_DIR (each is
# downloaded there from the Hugging Face repository in the comment).
#: image-to-image (v2v's style transfer, enhancement, colorization): stable-diffusion-v1-5/stable-diffusion-v1-5
IMG2IMG_FOLDER = "stable-diffusion-img2img"
#: x4 super-resolution (v2v's upscale): stabilityai/stable-diffusion-x4-upscaler
UPSCALER_FOLDER = "stable-diffusion-x4-upscaler"
#: inpainting (replace, background, extend with a prompt): stable-diffusion-v1-5/stable-diffusion-inpainting
INPAINT_FOLDER = "stable-diffusion-inpainting"


def get_model(model_id: str) -> ModelSpec:
    """The catalog entry called ``model_id`` (BadInputError listing the known ids otherwise)."""
    try:
        return _BY_ID[model_id]
    except KeyError:
        raise BadInputError(f"unknown model {model_id!r}; known models: {', '.join(_BY_ID)}") from None
