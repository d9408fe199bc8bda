"""Retry and caching conventions shared by every task."""

from __future__ import annotations

from prefect.tasks import exponential_backoff

from beatframe.infra.errors import is_transient

#: Retries with backoff, for transient failures only (I/O, network), never bad input or bugs.
RETRIES = 2
RETRY_DELAYS = exponential_backoff(backoff_factor=1)


def retry_on_transient(task, task_run, state) -> bool:
    try:
        state.result()
    except Exception as exc:  # noqa: BLE001 - classifying the task's own failure
        return is_transient(exc)
    return False
