"""The real processes of a Taskweb cluster, for the chaos suite and the deploy tests.

Workers (``manage.py runworker``), web nodes (daphne), a private PostgreSQL
cluster started with ``pg_ctl`` on a spare port, logging in as staff over HTTP,
and WebSocket clients that watch the console's live job statuses. Nothing here
is faked: signals go to real processes and bytes go over real sockets.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from tests import servers

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
STATUS_CELL = re.compile(r'id="job-(\d+)-status" class="status status-(\w+)"')


def wait_for(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f}s")
        time.sleep(interval)


def environment(database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a Taskweb process on ``database_url`` (REDIS_URL only if given)."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(
        DATABASE_URL=database_url,
        DJANGO_SETTINGS_MODULE="bench.settings",
        PYTHONUNBUFFERED="1",
        QUEUES_HEARTBEAT_INTERVAL="1",
        QUEUES_RETRY_BASE="0.05",
    )
    env.update(extra)
    return env


def manage(database_url: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run ``manage.py <args>`` to completion; its standard output, or an error with both streams."""
    done = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env={**environment(database_url), **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode:
        raise RuntimeError(
            f"manage.py {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def python_in_django(database_url: str, code: str, **env: str) -> Any:
    """Run ``code`` in a Django process on ``database_url``; it prints one JSON value last."""
    out = manage(database_url, "shell", "-v", "0", "-c", code, env=env)
    return json.loads(out.strip().splitlines()[-1])


ENQUEUE = """
import json, os
from tests.tasks import chaos_mark
kwargs = json.loads(os.environ["CHAOS_KWARGS"])
results = chaos_mark.enqueue_many([((), kwargs)] * int(os.environ["CHAOS_JOBS"]))
print(json.dumps([int(r.id) for r in results]))
"""


def enqueue_marks(database_url: str, jobs: int, **kwargs: float) -> list[int]:
    """Enqueue ``jobs`` chaos jobs from a producer process; their ids in order."""
    return python_in_django(database_url, ENQUEUE, CHAOS_JOBS=str(jobs), CHAOS_KWARGS=json.dumps(kwargs))


STAFF = """
import json, os
from django.contrib.auth import get_user_model
user, _ = get_user_model().objects.get_or_create(username=os.environ["CHAOS_USER"])
user.is_staff = user.is_superuser = True
user.set_password(os.environ["CHAOS_PASSWORD"])
user.save()
print(json.dumps(user.username))
"""


def make_staff(database_url: str, username: str = "chaos", password: str = "chaos-pass-7") -> tuple[str, str]:
    python_in_django(database_url, STAFF, CHAOS_USER=username, CHAOS_PASSWORD=password)
    return username, password


class Process:
    """A child process in its own session, its output in a log file under ``log_dir``."""

    def __init__(self, argv: list[str], env: dict[str, str], log_dir: Path, name: str) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = log_dir / f"{name}-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; the worker's children die with it."""
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; SIGKILL the whole session if it does not exit in time."""
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
            return None

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_worker(database_url: str, log_dir: Path, *args: str, **env: str) -> Process:
    argv = [PYTHON, "manage.py", "runworker", *args]
    return Process(argv, environment(database_url, **env), log_dir, "worker")


class WebNode(Process):
    """``daphne taskweb.asgi:application`` on the port the kernel gave it (``-p 0``), read from
    its own log and proven to be its own, so no other server is ever taken for it."""

    def __init__(self, database_url: str, log_dir: Path, *options: str, **env: str) -> None:
        """``options`` are daphne's own (``--proxy-headers``, as the systemd unit runs it)."""
        argv = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", "0", *options, "taskweb.asgi:application"]
        super().__init__(argv, environment(database_url, **env), log_dir, "web")
        try:
            self.port = servers.logged_port(self.proc, self.log_path, servers.DAPHNE_LISTENING, "daphne")
        except BaseException:
            self.stop()
            raise
        self.url = f"http://127.0.0.1:{self.port}"

    def health(self) -> int:
        """HTTP status of GET /health (0 when nothing answers)."""
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a login's 302 is the answer: report it rather than follow it


def try_log_in(
    base_url: str, username: str, password: str, context: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    """Fill in the console's login form (CSRF included) as a browser would: the status the
    POST answers (302 when logged in, 200 for a wrong password, 429 when locked out) and the
    cookies the site set. ``headers`` go with both requests (e.g. an X-Forwarded-For).

    ``context`` is the SSL context for an https:// site (e.g. one trusting a test certificate).
    """
    headers = headers or {}
    jar = http.cookiejar.CookieJar()
    cookies, https = urllib.request.HTTPCookieProcessor(jar), urllib.request.HTTPSHandler(context=context)
    opener = urllib.request.build_opener(cookies, https, _KeepRedirects())
    opener.open(urllib.request.Request(f"{base_url}/login/", headers=headers), timeout=15).read()
    csrf = next(cookie.value for cookie in jar if cookie.name == "csrftoken")
    form = urllib.parse.urlencode({"username": username, "password": password, "csrfmiddlewaretoken": csrf})
    request = urllib.request.Request(
        f"{base_url}/login/",
        data=form.encode(),
        headers={**headers, "Origin": base_url, "Referer": f"{base_url}/login/"},
    )
    try:
        with opener.open(request, timeout=15) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    return status, {cookie.name: cookie.value for cookie in jar}


def log_in(base_url: str, username: str, password: str, context: Any = None) -> str:
    """Log in through the console's login form; the Cookie header to reuse."""
    status, cookies = try_log_in(base_url, username, password, context)
    if "sessionid" not in cookies:
        raise RuntimeError(f"logging in as {username!r} at {base_url} gave no session (HTTP {status})")
    return "; ".join(f"{name}={value}" for name, value in cookies.items())


class StatusWatch:
    """A console WebSocket on the jobs page showing ``rows``; records each job's latest status.

    It connects like a browser: with the staff session cookie and an Origin of the
    site. Messages are read on a thread until ``close``.
    """

    def __init__(self, ws_url: str, cookie: str, origin: str, rows: Iterable[int], ssl: Any = None) -> None:
        from websockets.sync.client import connect

        rows = sorted(rows)
        top = max(rows, default=0)
        query = urllib.parse.urlencode({"page": "jobs", "top": top, "rows": ",".join(map(str, rows))})
        self.status: dict[int, str] = {}
        self.first_seen: dict[tuple[int, str], float] = {}
        self.messages = 0
        self.error: BaseException | None = None
        self._exit = contextlib.ExitStack()
        self.socket = self._exit.enter_context(
            connect(
                f"{ws_url}/ws/console/?{query}",
                origin=origin,
                additional_headers={"Cookie": cookie},
                open_timeout=20,
                ssl=ssl,
            )
        )
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.socket:
                self.messages += 1
                now = time.monotonic()
                for job_id, status in STATUS_CELL.findall(str(message)):
                    self.status[int(job_id)] = status
                    self.first_seen.setdefault((int(job_id), status), now)
        except Exception as exc:  # kept for the report; closing the socket ends the loop too
            self.error = exc

    def showing(self, status: str) -> set[int]:
        return {job_id for job_id, seen in list(self.status.items()) if seen == status}

    def close(self) -> None:
        self._exit.close()
        self._thread.join(10)


class PrivatePostgres:
    """A PostgreSQL cluster of the suite's own (initdb + pg_ctl) on a spare port.

    The machine's own server is never touched: this one lives in ``directory`` and
    is restarted and removed at will. As root, PostgreSQL runs as the postgres user.
    PostgreSQL cannot report a port it picked, so the first start takes one reserved a
    moment before (another, if someone took it meanwhile) and proves that the socket
    listening on it is the postmaster's; a restart keeps the port.
    """

    def __init__(self, directory: Path, **settings: str) -> None:
        """``settings`` are server options for every start (``fsync="on"`` for a durable one)."""
        self.dir = directory
        self.settings = settings
        self.data = directory / "data"
        self.log = directory / "postgres.log"
        self.port: int | None = None
        self.bin = _postgres_bin()

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        argv = [str(self.bin / tool), *args]
        if os.geteuid() == 0:
            argv = ["runuser", "-u", "postgres", "--", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")

    def init(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def start(self) -> None:
        if self.port is not None:
            self._start(self.port)
            return
        for _ in range(3):
            port = servers.reserve_port()
            try:
                self._start(port)
            except RuntimeError:
                if "could not bind" not in self.log.read_text(errors="replace"):
                    raise
                continue  # taken between the reservation and the bind: try another
            self.port = port
            return
        raise RuntimeError(f"PostgreSQL found no free port:\n{self.log.read_text(errors='replace')}")

    def _start(self, port: int) -> None:
        chosen = {"listen_addresses": "127.0.0.1", "fsync": "off", "max_connections": "100", **self.settings}
        options = f"-p {port} -k {self.dir} " + " ".join(f"-c {key}={value}" for key, value in chosen.items())
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start"
        )
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        if not servers.owns_port(postmaster, port):
            raise RuntimeError(f"port {port} is not held by our PostgreSQL (pid {postmaster})")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def remove(self) -> None:
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _postgres_bin() -> Path:
    if found := os.environ.get("PG_BIN"):
        return Path(found)
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if versions:
        return versions[-1]
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; set PG_BIN")


def pick(items: list[Any]) -> Any:
    return random.choice(items)
