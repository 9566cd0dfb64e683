"""A real PostgreSQL server for the sweep tests, started once per test session (per xdist worker)."""

from __future__ import annotations

import pwd
import re

import pytest

from postgres_server import SEARCHED, find_server_bin, postgres_server, server_user


@pytest.fixture(scope="session")
def postgres():
    """A running PostgreSQL server of our own; skips where none is installed."""
    pytest.importorskip("psycopg", reason="the PostgreSQL driver: pip install -c constraints.txt -e '.[postgres]'")
    bin_dir = find_server_bin()
    if bin_dir is None:
        pytest.skip(f"no PostgreSQL server: looked for {SEARCHED}")
    if (user := server_user()) is not None:
        try:
            pwd.getpwnam(user)
        except KeyError:
            pytest.skip(f"running as root, and there is no '{user}' user to run the PostgreSQL server as")
    with postgres_server(bin_dir) as server:
        yield server


@pytest.fixture
def postgres_url(postgres, request) -> str:
    """The SQLAlchemy URL of a new, empty database for this test."""
    return postgres.create_database(re.sub(r"\W", "_", request.node.name.lower())[:63])
