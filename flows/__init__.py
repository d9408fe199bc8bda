"""Prefect flows: composition of the tasks in ``tasks/`` into render DAGs."""
