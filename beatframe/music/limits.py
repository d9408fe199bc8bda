"""The ranges and defaults of a generation request, defined once: the reference video-generation
API's (``POST /generate``), which the Wan backend, the prompts, the scene edit and every route's
seed and prompt fields share. Ranges are inclusive. No imports, so request validation that runs
before anything heavy loads (:mod:`beatframe.music.render_requests`) can use them.
"""

MAX_PROMPT_CHARS = 2000
DEFAULT_NEGATIVE_PROMPT = "blurry, low quality"
DURATION_RANGE, DEFAULT_DURATION = (1.0, 60.0), 4.0
FPS_RANGE, DEFAULT_FPS = (12, 60), 24
GUIDANCE_RANGE, DEFAULT_GUIDANCE = (1.0, 20.0), 7.5
STEPS_RANGE, DEFAULT_STEPS = (10, 150), 50
SEED_MAX = 2**32 - 1
