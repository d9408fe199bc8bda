"""Prefect 3.8's server must import with the pinned FastAPI (it breaks with FastAPI >= 0.155)."""


def test_prefect_server_api_imports():
    import prefect.server.api.server as server

    assert hasattr(server, "create_app")
