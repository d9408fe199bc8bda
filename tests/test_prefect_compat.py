"""Prefect 3.8 with the pinned FastAPI: its server imports (it breaks with FastAPI >= 0.155), and
it accepts the null paging fields Prefect's own client sends (FastAPI >= 0.151 answers 422, which
breaks ``prefect deploy`` and ``prefect artifact ls``)."""


def test_prefect_server_api_imports():
    import prefect.server.api.server as server

    assert hasattr(server, "create_app")


def test_the_server_takes_the_clients_null_paging_fields(prefect_server):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.client.schemas.filters import WorkerFilter
    from prefect.exceptions import ObjectAlreadyExists

    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="compat-probe", type="process"))
        except ObjectAlreadyExists:
            pass
        # what `prefect deploy` asks after each deployment: offset and limit are sent as null
        workers = client.read_workers_for_work_pool(
            "compat-probe", worker_filter=WorkerFilter(status={"any_": ["ONLINE"]}))
        assert workers == []
        assert isinstance(client.read_artifacts(), list)  # `prefect artifact ls`
