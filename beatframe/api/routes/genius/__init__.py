"""The reference video-generation API's ``/genius/*`` routes (under ``/v1``), wired to what
beatframe really does, one module per feature; an option not built yet (priority scheduling,
inputs by URL) answers 501 naming what is missing, never a made-up result.

==========================================  ================================================================
route                                       answers with
==========================================  ================================================================
``POST /genius/orchestrator/select-model``  the model registry's choice for the prompt, length, resolution
                                            and free VRAM (:mod:`.orchestrator`)
``GET  /genius/scene/transitions``          the transitions the video stitcher has (:mod:`.scene`)
``POST /genius/scene/edit``                 a multi-shot edit of prompted, template or image scenes, as a task,
                                            on a track's downbeats when given (:mod:`.scene`)
``POST /genius/batch/submit``               one generate task per prompt, in one transaction (rate-limit
                                            class ``batch``); 501 for priority scheduling (:mod:`.batch`)
``POST /genius/stream/start``               the task's stream: ``WS /genius/stream/ws/{task_id}`` (:mod:`.stream`)
``GET  /genius/decoder/stats``              the step-cache statistics of the project's diffusion renders
                                            (:mod:`.decoder`)
``POST /genius/v2v/transform``              a video-to-video transform of a completed task's video, as a task
                                            (:mod:`.v2v`)
``POST /genius/inpaint/process``            inpainting of a completed task's video, as a task (:mod:`.inpaint`)
``POST /genius/lipsync/generate``           a mouth animated in a face region of a task's video, following a
                                            track's voice (visemes), as a task (:mod:`.lipsync`)
``POST /genius/consistency/…``              register an entity by its image; track entities through a task's
                                            video (boxes, confidences, a consistency score) (:mod:`.consistency`)
``GET  /genius/sla/status``                 the SLA status (:mod:`beatframe.api.routes.sla`)
==========================================  ================================================================

:mod:`.common` holds what several features share.
"""

from __future__ import annotations

from fastapi import APIRouter

from beatframe.api.routes import sla
from beatframe.api.routes.generate import REFERENCE_RESPONSES
from beatframe.api.routes.genius import (batch, consistency, decoder, inpaint, lipsync, orchestrator, scene, stream,
                                         v2v)
from beatframe.resources import SlaStatus

router = APIRouter(prefix="/genius", tags=["genius"], responses=REFERENCE_RESPONSES)
for _feature in (orchestrator, scene, batch, stream, decoder, v2v, inpaint, lipsync, consistency):
    router.include_router(_feature.router)
router.add_api_route("/sla/status", sla.get_sla_status, methods=["GET"], response_model=SlaStatus,
                     summary="The SLA status (the same as GET /v1/sla/status)")
