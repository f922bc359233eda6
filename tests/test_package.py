"""django-taskweb as a new user meets it: the wheel in a fresh virtualenv, a project made by
``django-admin startproject``, and the README's "Add Taskweb to an existing project" and
"Testing your tasks" followed as written: every step's code comes from the README itself, so
the README and this test cannot drift apart. The project runs on this run's database
vendor (SQLite, or PostgreSQL in a database of its own).
"""

from __future__ import annotations

import http.cookiejar
import os
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from . import servers
from .console_helpers import PAGES
from .processes import ROOT

pytestmark = pytest.mark.package

SOURCES = ["pyproject.toml", "README.md", "queues"]
"""What the distribution is built from (pyproject.toml says which of it goes in)."""
PASSWORD = "package-test-password"
TIMEOUT = 300


def readme_blocks(heading: str) -> list[str]:
    """The code blocks of one README section, without their indentation."""
    text = (ROOT / "README.md").read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [textwrap.dedent(block) for block in re.findall(r"```\w*\n(.*?)^\s*```", section, re.S | re.M)]


def readme_block(heading: str, first_line: str) -> str:
    (block,) = [block for block in readme_blocks(heading) if block.splitlines()[0] == first_line]
    return block


def readme_commands(heading: str, first_word: str) -> list[list[str]]:
    """The shell commands of a section that start with ``first_word``, comments dropped."""
    lines = [line.split("  #")[0].strip() for block in readme_blocks(heading) for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line.startswith(first_word + " ")]


SETUP = "Add Taskweb to an existing project"


@dataclass
class Project:
    """The new project: its virtualenv, its directory, and how to run its commands."""

    venv: Path
    path: Path
    wheel: Path
    env: dict[str, str]

    def run(self, *argv: str, check: bool = True, **env: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            argv, cwd=self.path, env={**self.env, **env}, capture_output=True, text=True, timeout=TIMEOUT
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{shlex.join(argv)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def manage(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run(str(self.venv / "bin" / "python"), "manage.py", *args, **kwargs)

    def shell(self, code: str) -> str:
        return self.manage("shell", "--verbosity", "0", "-c", textwrap.dedent(code)).stdout


def constraints(path: Path) -> Path:
    """The site's exact versions (requirements.txt), so the project gets what the suite runs."""
    pins = [
        re.sub(r"\[[^\]]*\]", "", line)  # constraints may not name extras
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    ]
    path.write_text("\n".join(pins) + "\n")
    return path


def clean_env(venv: Path) -> dict[str, str]:
    """This run's environment without what points at this checkout or the site's settings."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DJANGO_SETTINGS_MODULE", "PYTHONPATH", "DATABASE_URL", "VIRTUAL_ENV"}
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def install(work: Path) -> tuple[Path, Path]:
    """A fresh virtualenv with the wheel built and installed as the README's step 1 says."""
    source = work / "taskweb"
    source.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(
            ROOT / name,
            source / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if name == "queues" else {}),
        )
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=TIMEOUT)
    pinned = constraints(work / "constraints.txt")
    for argv in readme_commands(SETUP, "pip"):
        argv = [
            str(venv / "bin" / "python"),
            "-m",
            *[arg.replace("/path/to/taskweb", str(source)) for arg in argv],
        ]
        if argv[3] == "install":
            argv += ["--quiet", "--constraint", str(pinned)]
        subprocess.run(argv, cwd=work, env=clean_env(venv), check=True, timeout=TIMEOUT, capture_output=True)
    (wheel,) = (work / "dist").glob("django_taskweb-*.whl")
    return venv, wheel


def database_settings(work: Path) -> tuple[str, str | None]:
    """The project's DATABASES on this run's vendor: startproject's SQLite, or a PostgreSQL database."""
    if connection.vendor != "postgresql":
        return "", None
    config = connection.settings_dict
    name = f"{config['NAME'].removeprefix('test_')}_package"
    params = {"user": config["USER"], "host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or 5432}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'DROP DATABASE IF EXISTS "test_{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    database = {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        **{k.upper(): v for k, v in params.items()},
    }
    return f"\nDATABASES = {{'default': {database!r}}}\n", name


def drop_database(name: str | None) -> None:
    if name is None:
        return
    config = connection.settings_dict
    params = {"user": config["USER"], "host": config["HOST"] or "127.0.0.1", "port": config["PORT"] or 5432}
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'DROP DATABASE IF EXISTS "test_{name}" WITH (FORCE)')


def append(path: Path, code: str) -> None:
    path.write_text(path.read_text() + "\n" + code)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    work = tmp_path_factory.mktemp("package")
    venv, wheel = install(work)
    env = clean_env(venv)
    subprocess.run(["django-admin", "startproject", "mysite"], cwd=work, env=env, check=True, timeout=TIMEOUT)
    made = Project(venv=venv, path=work / "mysite", wheel=wheel, env=env)
    made.manage("startapp", "shop")
    databases, database = database_settings(work)
    try:
        settings = made.path / "mysite" / "settings.py"
        # The README's steps, as written.
        append(settings, readme_block(SETUP, "# mysite/settings.py"))
        if made.shell("import django; print(django.VERSION[0])").strip() == "5":
            append(settings, readme_block(SETUP, "# mysite/settings.py, Django 5.2 only"))
        append(made.path / "mysite" / "urls.py", readme_block(SETUP, "# mysite/urls.py"))
        append(made.path / "mysite" / "asgi.py", readme_block(SETUP, "# the end of mysite/asgi.py"))
        (made.path / "shop" / "tasks.py").write_text(readme_block(SETUP, "# shop/tasks.py"))
        (made.path / "shop" / "tests.py").write_text(readme_block("Testing your tasks", "# shop/tests.py"))
        # The project's own business, not Taskweb's: its app, where mail goes (Django 6.1's
        # startproject prints it; before, SMTP), which database.
        own = """INSTALLED_APPS += ["shop"]
if "MAILERS" not in globals():
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
"""
        append(settings, own + databases)
        vendor = made.shell("from django.db import connection; print(connection.vendor)").strip()
        assert vendor == connection.vendor
        for argv in readme_commands(SETUP, "python"):
            if argv[2] == "migrate":
                made.manage(*argv[2:])
            elif argv[2] == "createsuperuser":
                made.manage(
                    *argv[2:],
                    "--noinput",
                    "--username",
                    "admin",
                    "--email",
                    "admin@example.com",
                    DJANGO_SUPERUSER_PASSWORD=PASSWORD,
                )
        yield made
    finally:
        drop_database(database)


@pytest.fixture(scope="module")
def daphne(project: Project) -> Iterator[str]:
    """The README's server command, on the port the kernel gives it; yields its base URL."""
    (argv,) = readme_commands(SETUP, "daphne")
    log_path = project.path / "daphne.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [argv[0], "-b", "127.0.0.1", "-p", "0", *argv[1:]],
            cwd=project.path,
            env=project.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            port = servers.logged_port(server, log_path, servers.DAPHNE_LISTENING, "daphne")
            yield f"http://127.0.0.1:{port}"
        finally:
            server.terminate()
            server.wait(30)


class Visitor:
    """A browser's cookies over plain HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def get(self, path: str) -> tuple[int, str, str]:
        """Status, final URL (after redirects) and body."""
        try:
            with self.opener.open(self.base + path, timeout=30) as response:
                return response.status, response.url, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.url, error.read().decode()

    def cookie(self, name: str) -> str:
        return next(cookie.value for cookie in self.jar if cookie.name == name)

    def log_in(self, username: str, password: str) -> tuple[int, str, str]:
        self.get("/ops/login/")
        form = {"username": username, "password": password, "csrfmiddlewaretoken": self.cookie("csrftoken")}
        request = urllib.request.Request(
            self.base + "/ops/login/", data=urllib.parse.urlencode(form).encode()
        )
        with self.opener.open(request, timeout=30) as response:
            return response.status, response.url, response.read().decode()


def test_the_wheel_holds_the_app_with_its_files_and_nothing_of_the_site(project):
    names = zipfile.ZipFile(project.wheel).namelist()
    assert {
        "queues/migrations/0001_initial.py",
        "queues/templates/queues/base.html",
        "queues/templates/queues/login.html",
        "queues/static/queues/console.js",
        "queues/static/queues/vendor/htmx-2.0.10.min.js",
        "queues/management/commands/runworker.py",
    } <= set(names)
    assert {name.split("/")[0] for name in names} == {
        "queues",
        project.wheel.name.split("-")[0] + "-0.1.0.dist-info",
    }


def test_the_project_runs_the_installed_app_not_this_checkout(project):
    path = Path(project.shell("import queues; print(queues.__file__)").strip())
    assert path.is_relative_to(project.venv) and "site-packages" in path.parts


def test_check_and_makemigrations_are_clean(project):
    assert "System check identified no issues" in project.manage("check").stdout
    assert project.manage("makemigrations", "--check", "--dry-run").returncode == 0


def test_an_enqueue_rolled_back_with_its_transaction_leaves_nothing(project):
    out = project.shell(
        """
        from django.db import transaction
        from queues.models import Job
        from shop.tasks import send_receipt
        before = Job.objects.count()
        try:
            with transaction.atomic():
                send_receipt.enqueue(1)
                raise RuntimeError("the order failed")
        except RuntimeError:
            pass
        print(Job.objects.count() - before)
        """
    )
    assert out.strip() == "0"


def test_a_committed_job_is_run_by_runworker_burst_which_logs_what_it_did(project):
    job_id = project.shell("from shop.tasks import send_receipt; print(send_receipt.enqueue(7).id)").strip()
    (argv,) = [argv for argv in readme_commands(SETUP, "python") if argv[2] == "runworker"]
    worker = project.manage(*argv[2:], "--burst", "--concurrency", "1")
    assert re.search(r" INFO queues\.worker worker \S+ started: queues=\* concurrency=1", worker.stderr), (
        worker.stderr
    )
    assert re.search(r" INFO queues\.worker worker \S+ stopped: 1 jobs done, 0 failed", worker.stderr), (
        worker.stderr
    )
    result = project.shell(
        f"""
        from shop.tasks import send_receipt
        result = send_receipt.get_result("{job_id}")
        print(result.status, result.return_value)
        """
    )
    assert result.split() == ["SUCCESSFUL", "sent"]


def test_the_readmes_test_of_a_task_passes_in_the_project(project):
    run = project.manage("test", "shop")
    assert "Ran 1 test" in run.stderr and "OK" in run.stderr, run.stderr


def test_anonymous_visitors_reach_a_working_login_page_under_the_prefix(daphne):
    visitor = Visitor(daphne)
    status, url, html = visitor.get("/ops/jobs/")
    assert (status, url) == (200, f"{daphne}/ops/login/?next=/ops/jobs/")
    assert 'name="password"' in html
    status, url, _ = visitor.log_in("admin", PASSWORD)
    assert (status, url) == (200, f"{daphne}/ops/")


@pytest.fixture(scope="module")
def staff(project: Project, daphne: str) -> tuple[Visitor, str]:
    """A logged-in staff visitor, and the id of a job to look at."""
    job_id = project.shell("from shop.tasks import send_receipt; print(send_receipt.enqueue(1).id)").strip()
    visitor = Visitor(daphne)
    visitor.log_in("admin", PASSWORD)
    return visitor, job_id


@pytest.mark.parametrize("page", PAGES)
def test_staff_see_every_console_page_and_the_api_docs_under_the_prefix(staff, daphne, page):
    visitor, job_id = staff
    path = "/ops/" + page.format(job=job_id)
    status, url, _ = visitor.get(path)
    assert (status, url) == (200, daphne + path)


def test_the_console_socket_connects_at_the_prefixed_path_and_pushes_a_change(project, daphne, staff):
    from websockets.sync.client import connect

    visitor, _ = staff
    _, _, html = visitor.get("/ops/")
    socket_url = re.search(r'data-socket="([^"]*)"', html).group(1).replace("&amp;", "&")
    assert socket_url.startswith("/ops/ws/console/?")
    with connect(
        "ws://" + daphne.removeprefix("http://") + socket_url,
        origin=daphne,
        additional_headers={"Cookie": f"sessionid={visitor.cookie('sessionid')}"},
        open_timeout=20,
    ) as socket:
        while 'id="queue-table"' not in socket.recv(timeout=20):
            pass
        project.manage("taskctl", "queues", "create", "mail")
        while 'data-queue="mail"' not in socket.recv(timeout=20):
            pass
