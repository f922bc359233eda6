"""The files in deploy/ as an operator uses them (docs/deploy.md).

The systemd units' ExecStart commands run with their EnvironmentFile (paths moved
into the test's folders), nginx serves the site config over TLS in front of two
daphne units and proxies the console's WebSocket, and PgBouncer in transaction mode
pools poll-only workers. Only the paths, ports, hosts and secrets are swapped.
"""

from __future__ import annotations

import configparser
import http.client
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from bench import cluster
from queues.models import Job
from queues.states import Status

from . import processes, servers, tasks

ROOT = processes.ROOT
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "taskweb.env.example"
SITE = DEPLOY / "nginx" / "taskweb.conf"
PGBOUNCER_INI = DEPLOY / "pgbouncer" / "pgbouncer.ini"
REDIS_URL = os.environ.get("TASKWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]
POSTGRES = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the deployment runs on PostgreSQL")


# --- reading the files like systemd and nginx do ---------------------------------------


def read_unit(name: str) -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    unit.optionxform = str  # keys are case-sensitive
    unit.read(UNITS / name)
    return unit


def read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


def moved(text: str) -> str:
    """Paths of a host (/srv/taskweb) moved to this checkout."""
    return text.replace("/srv/taskweb", str(ROOT))


def exec_start(unit_name: str, env: dict[str, str], instance: str = "") -> list[str]:
    """The unit's ExecStart as systemd would run it: %i and ${VAR} expanded."""
    line = moved(read_unit(unit_name)["Service"]["ExecStart"]).replace("%i", instance)
    line = re.sub(r"\$\{(\w+)\}", lambda match: env[match.group(1)], line)
    return shlex.split(line)


def unit_env(**overrides: str) -> dict[str, str]:
    """A clean environment plus the example EnvironmentFile, with this test's database and hosts."""
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8"}
    if "TASKWEB_VAR_DIR" in os.environ:
        env["TASKWEB_VAR_DIR"] = os.environ["TASKWEB_VAR_DIR"]
    env.update(read_env_file(ENV_EXAMPLE))
    env.update(
        DATABASE_URL=processes.test_database_url(),
        REDIS_URL=REDIS_URL,
        SECRET_KEY="deploy-test-secret-key-with-more-than-fifty-characters-000",
        ALLOWED_HOSTS="127.0.0.1",
        TASKWEB_HOST="127.0.0.1",
        QUEUES_HEARTBEAT_INTERVAL="1",
    )
    env.update(overrides)
    return env


def start(argv: list[str], env: dict[str, str], logs: Path, name: str) -> cluster.Process:
    return cluster.Process(argv, env, logs, name)


def web_unit(env: dict[str, str], logs: Path) -> tuple[cluster.Process, int]:
    """A taskweb-web@ unit on port 0 (instance 0): the port daphne got, read from its log."""
    web = start(exec_start("taskweb-web@.service", env, "0"), env, logs, "web")
    return web, servers.logged_port(web.proc, web.log_path, servers.DAPHNE_LISTENING, "the web unit")


def stop_all(running: list[cluster.Process]) -> None:
    for process in running:
        process.stop()


# --- the files themselves --------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
@pytest.mark.parametrize(
    "unit, instance",
    [("taskweb-web@.service", "8001"), ("taskweb-worker@.service", "1"), ("taskweb-migrate.service", "")],
)
def test_systemd_accepts_each_unit(tmp_path, unit, instance):
    env_file = tmp_path / "taskweb.env"
    env_file.write_text(ENV_EXAMPLE.read_text())
    text = moved((UNITS / unit).read_text()).replace("/etc/taskweb/taskweb.env", str(env_file))
    name = unit.replace("@.", f"@{instance}.") if instance else unit
    (tmp_path / name).write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(tmp_path / name)], capture_output=True, text=True)
    complaints = [line for line in done.stderr.splitlines() if str(tmp_path) in line or "ignoring" in line]
    assert done.returncode == 0 and not complaints, done.stderr


def test_the_env_example_sets_only_what_taskweb_reads():
    read = (ROOT / "taskweb" / "settings.py").read_text() + (ROOT / "queues" / "conf.py").read_text()
    units = "".join(path.read_text() for path in UNITS.iterdir())
    for key in read_env_file(ENV_EXAMPLE):
        assert f'"{key}"' in read or f"${{{key}}}" in units, f"{key} is read by nothing"


def test_check_deploy_finds_nothing_with_the_example_environment_file():
    # As docs/deploy.md says, with the example file's settings (its placeholder secret swapped).
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=unit_env(),
        capture_output=True,
        text=True,
    )
    assert read_env_file(ENV_EXAMPLE)["TASKWEB_PRODUCTION"] == "1"
    assert done.returncode == 0, done.stdout + done.stderr


def test_nginx_tells_the_web_nodes_that_a_request_came_over_https():
    # The production profile trusts X-Forwarded-Proto: every proxied location must set it.
    locations = re.findall(r"location [^{]+\{[^}]*\}", SITE.read_text())
    proxied = [block for block in locations if "proxy_pass" in block]
    assert proxied and all("proxy_set_header X-Forwarded-Proto $scheme;" in block for block in proxied)


def test_the_worker_unit_outlasts_the_shutdown_grace():
    service = read_unit("taskweb-worker@.service")["Service"]
    grace = float(read_env_file(ENV_EXAMPLE)["QUEUES_SHUTDOWN_GRACE"])
    assert service["KillSignal"] == "SIGTERM" and service["KillMode"] == "mixed"
    assert float(service["TimeoutStopSec"]) > grace


# --- running them ----------------------------------------------------------------------


@POSTGRES
def test_the_migrate_unit_migrates_an_empty_database(tmp_path):
    import psycopg

    base = processes.test_database_url().rsplit("/", 1)[0]
    name = f"{connection.settings_dict['NAME']}_deploy"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        env = unit_env(DATABASE_URL=f"{base}/{name}")
        done = subprocess.run(
            exec_start("taskweb-migrate.service", env), cwd=ROOT, env=env, capture_output=True
        )
        assert done.returncode == 0, done.stderr.decode()
        with psycopg.connect(f"{base}/{name}") as migrated:
            assert migrated.execute("SELECT name FROM queues_queue").fetchall() == [("default",)]
    finally:
        with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "fullchain.pem", folder / "privkey.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def nginx_config(folder: Path, http_port: int, https_port: int, web_ports: list[int], static: Path) -> Path:
    """The site file with this machine's ports, certificate and static folder, inside a
    minimal nginx.conf that keeps every nginx file in ``folder``."""
    cert, key = self_signed_certificate(folder)
    site = SITE.read_text()
    swaps = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "server 127.0.0.1:8001;": f"server 127.0.0.1:{web_ports[0]};",
        "server 127.0.0.1:8002;": f"server 127.0.0.1:{web_ports[1]};",
        "/etc/ssl/taskweb/fullchain.pem": str(cert),
        "/etc/ssl/taskweb/privkey.pem": str(key),
        "/srv/taskweb/staticfiles/": f"{static}/",
    }
    for old, new in swaps.items():
        assert old in site, f"{SITE.name} no longer has {old!r}"
        site = site.replace(old, new)
    (folder / "taskweb.conf").write_text(site)
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = folder / "nginx.conf"
    main.write_text(
        ("user root root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        + "events { worker_connections 64; }\n"
        + f"http {{\n    include /etc/nginx/mime.types;\n    access_log {folder}/access.log;\n{temp}"
        + f"    include {folder}/taskweb.conf;\n}}\n"
    )
    return main


@POSTGRES
@pytest.mark.skipif(
    not shutil.which("nginx", path="/usr/sbin:/usr/bin:" + os.environ["PATH"]), reason="no nginx"
)
def test_nginx_serves_static_files_and_proxies_pages_and_the_console_socket_to_two_web_units(tmp_path):
    logs, static, nginx_dir = tmp_path / "logs", tmp_path / "static", tmp_path / "nginx"
    nginx_dir.mkdir()
    # nginx cannot report a port it picked: reserve two, and prove below that nginx holds them.
    http_port, https_port = servers.reserve_port(), servers.reserve_port()
    site_url = f"https://127.0.0.1:{https_port}"
    env = unit_env(STATIC_ROOT=str(static), CSRF_TRUSTED_ORIGINS=site_url)
    # As docs/deploy.md says: collect the static files for nginx on each web host.
    collected = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput"], cwd=ROOT, env=env)
    assert collected.returncode == 0

    get_user_model().objects.create_superuser("operator", password="deploy-pass-5")
    running: list[cluster.Process] = []
    watch = None
    try:
        web_ports = []
        for _ in range(2):
            web, port = web_unit(env, logs)
            running.append(web)
            web_ports.append(port)
        main = nginx_config(nginx_dir, http_port, https_port, web_ports, static)
        nginx = shutil.which("nginx", path="/usr/sbin:/usr/bin:" + os.environ["PATH"])
        checked = subprocess.run(
            [nginx, "-t", "-c", str(main), "-p", str(nginx_dir)], capture_output=True, text=True
        )
        assert checked.returncode == 0, checked.stderr
        proxy = start([nginx, "-c", str(main), "-p", str(nginx_dir), "-g", "daemon off;"], env, logs, "nginx")
        running.append(proxy)
        for port in (http_port, https_port):
            servers.wait_for_own_port(proxy.proc, port, "nginx", proxy.log_path)
        trust = ssl.create_default_context(cafile=str(nginx_dir / "fullchain.pem"))

        plain = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        plain.request("GET", "/health")
        redirect = plain.getresponse()
        assert redirect.status == 301 and redirect.getheader("Location") == "https://127.0.0.1/health"

        assert https_get(https_port, "/health", trust)[0] == 200
        asset = next(path for path in static.rglob("*.css"))
        status, body = https_get(https_port, f"/static/{asset.relative_to(static)}", trust)
        assert (status, body) == (200, asset.read_bytes()), "nginx serves what collectstatic gathered"

        cookie = cluster.log_in(site_url, "operator", "deploy-pass-5", context=trust)
        job = tasks.noop.enqueue()
        watch = cluster.StatusWatch(
            f"wss://127.0.0.1:{https_port}", cookie, site_url, [int(job.id)], ssl=trust
        )
        worker_env = unit_env()
        worker = start(exec_start("taskweb-worker@.service", worker_env, "1"), worker_env, logs, "worker")
        running.append(worker)
        cluster.wait_for(
            lambda: watch.showing("succeeded") == {int(job.id)}, 60, "the finished job on the socket"
        )

        kill_signal = read_unit("taskweb-worker@.service")["Service"]["KillSignal"]
        worker.signal(getattr(signal, kill_signal))
        timeout = float(read_unit("taskweb-worker@.service")["Service"]["TimeoutStopSec"])
        assert worker.proc.wait(timeout) == 0, worker.output()
    finally:
        if watch is not None:
            watch.close()
        stop_all(running)


def https_get(port: int, path: str, context: ssl.SSLContext) -> tuple[int, bytes]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=15)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()


@POSTGRES
@pytest.mark.skipif(
    not shutil.which("pgbouncer", path="/usr/sbin:" + os.environ["PATH"]), reason="no pgbouncer"
)
def test_poll_only_workers_and_a_web_unit_work_through_pgbouncer_in_transaction_mode(tmp_path):
    folder = Path(tempfile.mkdtemp(prefix="taskweb-pgbouncer-"))  # the postgres user must reach it
    port = servers.reserve_port()  # PgBouncer cannot report a port it picked
    config = settings_of_test_database()
    ini = PGBOUNCER_INI.read_text()
    swaps = {
        "host=db.internal port=5432 dbname=taskweb": f"host={config['HOST']} port={config['PORT']} "
        f"dbname={config['NAME']}",
        "listen_addr = 0.0.0.0": "listen_addr = 127.0.0.1",
        "listen_port = 6432": f"listen_port = {port}",
        "auth_type = scram-sha-256": "auth_type = trust",
        "auth_file = /etc/pgbouncer/userlist.txt": f"auth_file = {folder}/userlist.txt",
    }
    for old, new in swaps.items():
        assert old in ini, f"{PGBOUNCER_INI.name} no longer has {old!r}"
        ini = ini.replace(old, new)
    ini += f"unix_socket_dir = {folder}\nlogfile = {folder}/pgbouncer.log\npidfile = {folder}/pgbouncer.pid\n"
    (folder / "pgbouncer.ini").write_text(ini)
    (folder / "userlist.txt").write_text(f'"{config["USER"]}" ""\n')
    argv = [shutil.which("pgbouncer", path="/usr/sbin:" + os.environ["PATH"]), str(folder / "pgbouncer.ini")]
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        argv = ["runuser", "-u", "postgres", "--", *argv]
    logs = tmp_path / "logs"
    pooled = f"postgres://{config['USER']}@127.0.0.1:{port}/taskweb"
    env = unit_env(DATABASE_URL=pooled, QUEUES_LISTEN="0", DISABLE_SERVER_SIDE_CURSORS="1")
    bouncer = start(argv, env, logs, "pgbouncer")
    running = [bouncer]
    try:
        servers.wait_for_own_port(bouncer.proc, port, "pgbouncer", folder / "pgbouncer.log")
        web, web_port = web_unit(env, logs)
        running.append(web)
        running += [
            start(exec_start("taskweb-worker@.service", env, str(n)), env, logs, "worker") for n in (1, 2)
        ]
        results = tasks.noop.enqueue_many([((), {}) for _ in range(300)])
        cluster.wait_for(
            lambda: Job.objects.filter(status=Status.SUCCEEDED).count() == len(results), 120, "the jobs done"
        )
        status, _ = http_get(web_port, "/health")
        assert status == 200
        for worker in running[2:]:
            assert worker.stop() == 0, worker.output()
            assert '"level": "ERROR"' not in worker.output(), worker.output()
            assert "LISTEN" not in worker.output(), "poll-only: no LISTEN through the pooler"
    finally:
        stop_all(running[::-1])  # the pooler last
        shutil.rmtree(folder, ignore_errors=True)


def settings_of_test_database() -> dict[str, str]:
    config = connection.settings_dict
    return {
        "HOST": config["HOST"] or "127.0.0.1",
        "PORT": str(config["PORT"] or 5432),
        "NAME": config["NAME"],
        "USER": config["USER"] or "postgres",
    }


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    conn.request("GET", path)
    response = conn.getresponse()
    return response.status, response.read()
