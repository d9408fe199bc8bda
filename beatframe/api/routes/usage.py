"""``/v1/usage``: the project's cost lines, aggregated per day, per object (a run's output), per flow,
per stage or per environment.

Every finished render adds one priced line per flow stage (seconds, device, amount from the price
table of :mod:`beatframe.infra.cost`). Both environments are reported to either key, since billing is
per project; test-mode lines are priced but never billed (``billed_amount`` 0).
"""

from __future__ import annotations

from datetime import date
from typing import Literal

from fastapi import APIRouter, Depends, Query, Request

from beatframe.api.deps import Principal, connection, principal
from beatframe.api.errors import ApiError
from beatframe.resources import Usage

router = APIRouter(prefix="/usage", tags=["usage"])
#: A line's render kind: from its object's id, or, for a task (gen_…), from the render that made it.
_KIND = ("CASE WHEN object_id LIKE 'cnv\\_%%' THEN 'canvas' WHEN object_id LIKE 'vid\\_%%' THEN 'video'"
         " ELSE (SELECT r.kind FROM generations g JOIN renders r ON r.id = g.render_id WHERE g.id = usage_lines.object_id)"
         " END")
_GROUP_KEYS = {"day": "to_char(day, 'YYYY-MM-DD')", "object": "object_id", "flow": _KIND, "stage": "stage",
               "env": "env"}


@router.get("", response_model=Usage)
def usage(request: Request, who: Principal = Depends(principal),
          group_by: Literal["day", "object", "flow", "stage", "env"] = "day",
          start: date | None = Query(None, description="first day, inclusive (YYYY-MM-DD)"),
          end: date | None = Query(None, description="last day, inclusive (YYYY-MM-DD)")) -> dict:
    if start and end and start > end:
        raise ApiError(400, "parameter_invalid", "start is after end", param="start")
    key = _GROUP_KEYS[group_by]
    env_group = "" if group_by == "env" else ", env"
    with connection(request) as conn:
        rows = conn.execute(
            f"SELECT {key} AS key, env, sum(seconds) AS seconds,"
            f" sum(amount) AS amount, sum(billed_amount) AS billed_amount, count(*) AS lines, max(currency) AS currency"
            f" FROM usage_lines WHERE project_id = %s AND day >= coalesce(%s, '-infinity'::date)"
            f" AND day <= coalesce(%s, 'infinity'::date) GROUP BY {key}{env_group} ORDER BY 1, 2",
            (who.project_id, start, end)).fetchall()
    from beatframe.api.runner import FLOWS

    # per flow: the Prefect flow's name, as the UI and the cost artifacts name it
    name = (lambda key: FLOWS[key][1] if key in FLOWS else key) if group_by == "flow" else (lambda key: key)
    data = [{"key": name(r["key"]), "env": r["env"], "seconds": round(float(r["seconds"]), 3),
             "amount": float(r["amount"]), "billed_amount": float(r["billed_amount"]), "lines": r["lines"]}
            for r in rows]
    currencies = {r["currency"] for r in rows}
    return {"object": "usage", "group_by": group_by, "currency": currencies.pop() if len(currencies) == 1 else "USD",
            "total": round(sum(d["amount"] for d in data), 8), "billed_total": round(sum(d["billed_amount"] for d in data), 8),
            "data": data}
