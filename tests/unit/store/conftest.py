import pytest

from gatekeeper.store.migrate import open_store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)])
def db_url(request, tmp_path):
    """The scheduler's database on SQLite (a file, WAL) and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/gatekeeper.sqlite"
    return request.getfixturevalue("postgres_db_url")


@pytest.fixture
def store(db_url):
    engine = open_store(db_url)
    yield engine
    engine.dispose()
