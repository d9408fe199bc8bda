"""Cursor pagination (``limit``, ``starting_after``, ``ending_before``, ``has_more``), newest first."""

from __future__ import annotations

from beatframe.api.deps import looks_like_id
from beatframe.api.errors import ApiError


def page(pool, *, table: str, columns: str, project_id: str, env: str, limit: int,
         starting_after: str | None, ending_before: str | None, where: str = "TRUE",
         where_params: tuple = ()) -> tuple[list[dict], bool]:
    """One page of ``table`` for a project, ordered by (created_at, id) descending; ``where`` narrows
    it further, with its ``%s`` placeholders filled from ``where_params``."""
    if starting_after and ending_before:
        raise ApiError(400, "parameter_invalid", "give starting_after or ending_before, not both")
    cursor_id = starting_after or ending_before
    if cursor_id is not None and not looks_like_id(cursor_id):
        raise ApiError(400, "parameter_invalid", "the cursor must be an object id from an earlier page",
                       param="starting_after" if starting_after else "ending_before")
    with pool.connection() as conn:
        params: list = [project_id, env, *where_params]
        clause = ""
        if cursor_id:
            cursor = conn.execute(f"SELECT created_at, id FROM {table} WHERE id = %s AND project_id = %s",
                                  (cursor_id, project_id)).fetchone()
            if cursor is None:
                raise ApiError(400, "parameter_invalid", f"no object {cursor_id!r} to page from",
                               param="starting_after" if starting_after else "ending_before")
            op = "<" if starting_after else ">"
            clause = f" AND (created_at, id) {op} (%s, %s)"
            params += [cursor["created_at"], cursor["id"]]
        order = "DESC" if not ending_before else "ASC"
        rows = conn.execute(
            f"SELECT {columns} FROM {table} WHERE project_id = %s AND env = %s AND {where}{clause}"
            f" ORDER BY created_at {order}, id {order} LIMIT %s", (*params, limit + 1)).fetchall()
    has_more = len(rows) > limit
    rows = rows[:limit]
    if ending_before:
        rows.reverse()
    return rows, has_more
