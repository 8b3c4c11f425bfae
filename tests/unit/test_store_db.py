"""create_engine: which driver a URL gets, and no password in what it says."""

from __future__ import annotations

import pytest

from gatekeeper.errors import UserError
from gatekeeper.store.db import create_engine


@pytest.mark.parametrize("url", ["postgresql://gk:s3cret@127.0.0.1:1/gk",
                                 "postgres://gk:s3cret@127.0.0.1:1/gk",
                                 "postgresql+psycopg://gk:s3cret@127.0.0.1:1/gk"])
def test_postgresql_means_psycopg3(url):
    # SQLAlchemy's own default for postgresql:// is psycopg2, not installed.
    engine = create_engine(url)  # no connection is made yet
    assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    assert "s3cret" not in repr(engine) and "s3cret" not in str(engine.url)
    engine.dispose()


def test_explicit_driver_kept_and_missing_one_is_a_user_error():
    with pytest.raises(UserError) as e:
        create_engine("postgresql+pg8000://gk:s3cret@127.0.0.1:1/gk")
    assert "pg8000" in str(e.value) and "gatekeeper[postgres]" in str(e.value)
    assert "s3cret" not in str(e.value)
    with pytest.raises(UserError, match="unknown database kind 'mysqlx'"):
        create_engine("mysqlx://gk:s3cret@127.0.0.1:1/gk")


def test_sqlite_unchanged(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/a/b.db")
    assert engine.dialect.name == "sqlite" and (tmp_path / "a").is_dir()
    engine.dispose()
