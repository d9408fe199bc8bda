"""``GET /genius/decoder/stats``: the step-cache statistics of the project's recent diffusion
renders, read from their manifests, under the names of the reference's speculative decoding.

beatframe does no speculative decoding: its diffusion backends reuse transformer work between
denoising steps (a step cache). ``acceptance_rate`` is that cache's reuse rate under the
reference's name, and ``speedup_factor`` is measured where the manifests allow it (step times of
renders alike but for the cache, with and without it) and otherwise the theoretical 1 / (1 - r)
of the reuse rate r; ``speedup_basis`` says which."""

from __future__ import annotations

from collections import defaultdict
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from beatframe.api.deps import Principal, connection, principal
from beatframe.resources import BeatframeObject

router = APIRouter()


class DecoderStats(BeatframeObject):
    renders: int = Field(description="recent diffusion renders of this project (Wan), the CPU generators not counted")
    total_steps: int = Field(description="denoising steps they ran")
    average_step_ms: float | None = Field(None, description="measured: the mean time of one denoising step, as the"
                                                            " renders timed it")
    cache_reuse_rate: float | None = Field(None, description="measured: the share of transformer-block work the step"
                                                             " cache (First Block Cache or Pyramid Attention"
                                                             " Broadcast) reused, over the renders that had one")
    acceptance_rate: float | None = Field(None, description="a relabel of cache_reuse_rate under the reference's"
                                                            " name: step-cache reuse, not speculative decoding's"
                                                            " acceptance rate")
    speedup_factor: float | None = Field(None, description="the step cache's speed-up (step-cache reuse, not"
                                                           " speculative decoding). Measured when renders alike but"
                                                           " for the cache ran with and without it: their step"
                                                           " times' ratio. Else theoretical: 1 / (1 - r) of the"
                                                           " reuse rate r, the transformer work saved, not a"
                                                           " measured speed-up. speedup_basis says which")
    speedup_basis: Literal["measured", "theoretical"] | None = Field(
        None, description="whether speedup_factor is measured or the theoretical 1 / (1 - r)")


#: How many recent outputs of each kind the statistics cover.
DECODER_STATS_WINDOW = 200


@router.get("/decoder/stats", response_model=DecoderStats)
def decoder_stats(request: Request, who: Principal = Depends(principal)) -> dict:
    """Acceleration statistics of this project's recent diffusion renders, from their manifests.
    The reference describes speculative decoding; beatframe's diffusion backends accelerate by
    reusing transformer work between steps, reported here under the same names."""
    with connection(request) as conn:
        rows = [row for table in ("canvases", "videos", "generations") for row in conn.execute(
            f"SELECT manifest->'generator'->>'model' AS model, manifest->'generator'->'params'->'stats' AS stats"
            f" FROM {table} WHERE project_id = %s AND env = %s AND manifest->'generator'->'params' ? 'stats'"
            f" ORDER BY created_at DESC LIMIT {DECODER_STATS_WINDOW}", (who.project_id, who.env))]
    stats = [row["stats"] for row in rows]
    steps = [s for s in stats if s.get("it_per_s")]
    reuse = [s["cache_reuse_rate"] for s in stats if s.get("cache_reuse_rate") is not None]
    rate = round(sum(reuse) / len(reuse), 4) if reuse else None
    measured = measured_speedup(rows)
    theoretical = round(1 / (1 - rate), 3) if rate is not None and rate < 1 else None
    return {"renders": len(stats), "total_steps": int(sum(s.get("steps", 0) for s in stats)),
            "average_step_ms": round(1000 * sum(1 / s["it_per_s"] for s in steps) / len(steps), 2) if steps else None,
            "cache_reuse_rate": rate, "acceptance_rate": rate,
            "speedup_factor": measured if measured is not None else theoretical,
            "speedup_basis": "measured" if measured is not None else "theoretical" if theoretical is not None else None}


def measured_speedup(rows: list[dict]) -> float | None:
    """The step cache's measured speed-up over ``rows`` (``model`` and manifest ``stats``): for each
    call shape (model, rendered size, frames, batch size, device) run both with and without a
    cache, the mean step time without it over the mean with it; the shapes' ratios averaged,
    each weighted by its cached renders. None when no shape ran both ways."""
    times: dict[tuple, dict[bool, list[float]]] = defaultdict(lambda: {True: [], False: []})
    for row in rows:
        stats = row["stats"]
        if stats.get("it_per_s"):
            shape = (row["model"], tuple(stats.get("render_size") or ()), stats.get("native_frames"),
                     stats.get("batch_size"), stats.get("device"))
            times[shape][bool(stats.get("cache"))].append(1 / stats["it_per_s"])
    pairs = [(sum(t[False]) / len(t[False]) / (sum(t[True]) / len(t[True])), len(t[True]))
             for t in times.values() if t[True] and t[False]]
    if not pairs:
        return None
    return round(sum(ratio * n for ratio, n in pairs) / sum(n for _, n in pairs), 3)
