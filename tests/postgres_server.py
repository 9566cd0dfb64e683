"""A throwaway PostgreSQL server for tests: its own data folder, a free loopback port, trust auth.

PostgreSQL refuses to run as root; when the tests run as root (as in CI), the server commands run as
the ``postgres`` user, which owns the temporary folder. Otherwise they run as the current user.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

SERVER_PROGRAMS = ("initdb", "pg_ctl", "createdb")
SEARCHED = "initdb, pg_ctl and createdb in /usr/lib/postgresql/*/bin or on PATH"
SUPERUSER = "postgres"
START_ATTEMPTS = 3


def find_server_bin() -> Path | None:
    """The folder holding PostgreSQL's server programs (the newest under /usr/lib/postgresql, else PATH's)."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: _version(Path(d).parent.name))
    candidates = [Path(d) for d in reversed(versions)]
    if on_path := shutil.which("pg_ctl"):
        candidates.append(Path(on_path).resolve().parent)  # Debian links /usr/bin/pg_ctl into the versioned folder
    return next((d for d in candidates if all((d / p).is_file() for p in SERVER_PROGRAMS)), None)


def server_user() -> str | None:
    """Whom the server runs as: ``postgres`` when we are root (PostgreSQL refuses root), else ourselves (None)."""
    return SUPERUSER if os.geteuid() == 0 else None


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """A running server: ``create_database(name)`` and ``url(name)`` for SQLAlchemy (psycopg 3)."""

    def __init__(self, bin_dir: Path, root: Path, run_as: str | None):
        self.bin_dir, self.root, self.run_as = bin_dir, root, run_as
        self.data, self.sockets, self.log = root / "data", root / "sockets", root / "server.log"
        self.port = 0

    def command(self, program: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv: Sequence[str] = [str(self.bin_dir / program), *args]
        if self.run_as:
            argv = ["runuser", "-u", self.run_as, "--", *argv]
        result = subprocess.run(argv, cwd=self.root, capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{program} {' '.join(args)} failed ({result.returncode}):\n"
                f"{result.stdout}{result.stderr}{self.server_log()}"
            )
        return result

    def server_log(self) -> str:
        return f"\n--- {self.log} ---\n{self.log.read_text()[-3000:]}" if self.log.exists() else ""

    def init(self) -> None:
        self.command(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"
        )

    def start(self) -> None:
        # The port is free when chosen; another process may take it before the server binds it: try again.
        for attempt in range(START_ATTEMPTS):
            self.port = _free_port()
            options = (
                f"-p {self.port} -k '{self.sockets}' -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off"
            )
            started = self.command(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
                check=attempt == START_ATTEMPTS - 1,
            )
            if started.returncode == 0:
                return

    def stop(self) -> None:
        self.command("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def create_database(self, name: str) -> str:
        self.command("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, name)
        return self.url(name)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"


@contextmanager
def postgres_server(bin_dir: Path) -> Iterator[PostgresServer]:
    """Initialize and start a server from ``bin_dir``; always stop it and delete its folder afterwards."""
    run_as = server_user()
    # Under the system temporary folder, not pytest's tmp_path: the postgres user cannot enter root's 0700 folders.
    root = Path(tempfile.mkdtemp(prefix="imgcls-pg-"))
    server = PostgresServer(bin_dir, root, run_as)
    try:
        server.sockets.mkdir()
        if run_as:
            user = pwd.getpwnam(run_as)
            for path in (root, server.sockets):
                os.chown(path, user.pw_uid, user.pw_gid)
        server.init()
        server.start()
        yield server
    finally:
        if server.data.exists():
            server.stop()
        shutil.rmtree(root, ignore_errors=True)
