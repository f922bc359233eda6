"""The files in deploy/ as an operator uses them (docs/deploy.md).

The systemd units' ExecStart commands run with their EnvironmentFile (paths moved
into the test's folders), nginx serves the site config over TLS in front of two
daphne units and proxies the console's WebSocket, nginx requires client certificates
(issued with docs/deploy.md's commands) for the API and, in front of the broker unit,
for the TCP protocol, and PgBouncer in transaction mode pools poll-only workers. Only
the paths, ports, hosts and secrets are swapped.
"""

from __future__ import annotations

import configparser
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

from bench import cluster
from queues.models import Job
from queues.states import Status

from . import brokers, processes, servers, tasks
from .factories import make_token

ROOT = processes.ROOT
DEPLOY = ROOT / "deploy"
UNITS = DEPLOY / "systemd"
ENV_EXAMPLE = DEPLOY / "taskweb.env.example"
SITE = DEPLOY / "nginx" / "taskweb.conf"
BROKER_SITE = DEPLOY / "nginx" / "taskweb-broker.conf"
DOCS = ROOT / "docs" / "deploy.md"
NGINX = shutil.which("nginx", path="/usr/sbin:/usr/bin:" + os.environ["PATH"])
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")
PGBOUNCER_INI = DEPLOY / "pgbouncer" / "pgbouncer.ini"
REDIS_URL = os.environ.get("TASKWEB_TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
pytestmark = [pytest.mark.process, pytest.mark.django_db(transaction=True)]
POSTGRES = pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the deployment runs on PostgreSQL")
WITH_NGINX = pytest.mark.skipif(not NGINX, reason="no nginx")
WITH_STREAM = pytest.mark.skipif(
    not STREAM_MODULE.exists(), reason="no nginx stream module (libnginx-mod-stream: make deploy-tools)"
)


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
    [
        ("taskweb-web@.service", "8001"),
        ("taskweb-worker@.service", "1"),
        ("taskweb-migrate.service", ""),
        ("taskweb-broker.service", ""),
    ],
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


def docs_blocks(heading: str) -> list[str]:
    """The code blocks of one section of docs/deploy.md, as an operator copies them."""
    blocks, current, fenced, inside = [], [], False, False
    for line in DOCS.read_text().splitlines():
        if line.startswith("```"):
            if fenced and inside:
                blocks.append("\n".join(current))
            fenced, current = not fenced, []
        elif fenced:
            current.append(line)
        elif line.startswith("#"):
            inside = line == heading
    assert blocks, f"docs/deploy.md has no code under {heading!r}"
    return blocks


@dataclass(frozen=True)
class ClientCertificates:
    """What docs/deploy.md's commands issue: a client CA and one client's certificate."""

    folder: Path

    @property
    def ca(self) -> Path:
        return self.folder / "client-ca.pem"

    @property
    def client(self) -> tuple[Path, Path]:
        return self.folder / "billing.pem", self.folder / "billing.key"


def issue_client_certificates(folder: Path) -> ClientCertificates:
    """Run docs/deploy.md's openssl commands, word for word, in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (commands,) = docs_blocks("### Issuing client certificates")
    done = subprocess.run(["bash", "-euc", commands], cwd=folder, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return ClientCertificates(folder)


@dataclass(frozen=True)
class NginxPorts:
    """Ports for nginx's listen lines, reserved (nginx cannot report a port it picked) and
    proven to be nginx's once it runs."""

    http: int = field(default_factory=servers.reserve_port)
    https: int = field(default_factory=servers.reserve_port)
    api: int = field(default_factory=servers.reserve_port)
    broker: int = field(default_factory=servers.reserve_port)
    no_certificate: int = field(default_factory=servers.reserve_port)
    refused_certificate: int = field(default_factory=servers.reserve_port)


def swapped(path: Path, swaps: dict[str, str]) -> str:
    text = path.read_text()
    for old, new in swaps.items():
        assert old in text, f"{path.name} no longer has {old!r}"
        text = text.replace(old, new)
    return text


def nginx_config(
    folder: Path,
    ports: NginxPorts,
    web_ports: list[int],
    static: Path,
    client_ca: Path,
    broker_port: int | None = None,
) -> Path:
    """The site file (and, with ``broker_port``, the TCP protocol's stream file) with this
    machine's ports, certificates and static folder, inside a minimal nginx.conf that keeps
    every nginx file in ``folder``."""
    cert, key = self_signed_certificate(folder)
    certificates = {
        "/etc/ssl/taskweb/fullchain.pem": str(cert),
        "/etc/ssl/taskweb/privkey.pem": str(key),
        "/etc/ssl/taskweb/client-ca.pem": str(client_ca),
    }
    site = swapped(
        SITE,
        {
            "listen 80;": f"listen 127.0.0.1:{ports.http};",
            "listen 443 ssl;": f"listen 127.0.0.1:{ports.https} ssl;",
            "listen 8443 ssl;": f"listen 127.0.0.1:{ports.api} ssl;",
            "server 127.0.0.1:8001;": f"server 127.0.0.1:{web_ports[0]};",
            "server 127.0.0.1:8002;": f"server 127.0.0.1:{web_ports[1]};",
            "/srv/taskweb/staticfiles/": f"{static}/",
            **certificates,
        },
    )
    (folder / "taskweb.conf").write_text(site)
    modules = streams = ""
    if broker_port is not None:
        broker_site = swapped(
            BROKER_SITE,
            {
                "listen 7443 ssl;": f"listen 127.0.0.1:{ports.broker} ssl;",
                "server 127.0.0.1:7070;": f"server 127.0.0.1:{broker_port};",
                "127.0.0.1:7071": f"127.0.0.1:{ports.no_certificate}",
                "127.0.0.1:7072": f"127.0.0.1:{ports.refused_certificate}",
                **certificates,
            },
        )
        (folder / "taskweb-broker.conf").write_text(broker_site)
        # As docs/deploy.md says, included at the top level; Debian's nginx.conf loads the
        # module from modules-enabled/, this one loads it itself.
        modules = f"load_module {STREAM_MODULE};\n"
        streams = f"include {folder}/taskweb-broker.conf;\n"
    temp = "".join(
        f"    {kind}_temp_path {folder}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = folder / "nginx.conf"
    main.write_text(
        modules
        + ("user root root;\n" if os.geteuid() == 0 else "")
        + f"worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log info;\n"
        + "events { worker_connections 64; }\n"
        + streams
        + f"http {{\n    include /etc/nginx/mime.types;\n    access_log {folder}/access.log;\n{temp}"
        + f"    include {folder}/taskweb.conf;\n}}\n"
    )
    return main


def run_nginx(main: Path, ports: list[int], env: dict[str, str], logs: Path) -> cluster.Process:
    """nginx -t, then nginx in the foreground, once it holds each of ``ports``."""
    checked = subprocess.run(
        [NGINX, "-t", "-c", str(main), "-p", str(main.parent)], capture_output=True, text=True
    )
    assert checked.returncode == 0, checked.stderr
    proxy = start([NGINX, "-c", str(main), "-p", str(main.parent), "-g", "daemon off;"], env, logs, "nginx")
    for port in ports:
        servers.wait_for_own_port(proxy.proc, port, "nginx", proxy.log_path)
    return proxy


@POSTGRES
@WITH_NGINX
def test_nginx_serves_static_files_and_proxies_pages_and_the_console_socket_to_two_web_units(tmp_path):
    logs, static, nginx_dir = tmp_path / "logs", tmp_path / "static", tmp_path / "nginx"
    nginx_dir.mkdir()
    ports = NginxPorts()
    http_port, https_port = ports.http, ports.https
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
        client_ca = issue_client_certificates(tmp_path / "certificates").ca
        main = nginx_config(nginx_dir, ports, web_ports, static, client_ca)
        running.append(run_nginx(main, [http_port, https_port, ports.api], env, logs))
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


# --- client certificates (mutual TLS) on the API and the TCP protocol ---------------------


@dataclass(frozen=True)
class MutualTls:
    """nginx with the site and the TCP protocol's stream file in front of a web unit and the
    broker unit; the certificates docs/deploy.md's commands issued, and those of another CA."""

    ports: NginxPorts
    server_certificate: Path
    ours: ClientCertificates
    theirs: ClientCertificates

    def trust(self, certificate: tuple[Path, Path] | None = None) -> ssl.SSLContext:
        """A client's TLS context: trusts the test server, and shows ``certificate`` if given."""
        context = ssl.create_default_context(cafile=str(self.server_certificate))
        if certificate is not None:
            context.load_cert_chain(*certificate)
        return context


@pytest.fixture(scope="module")
def mutual_tls(tmp_path_factory, django_db_setup) -> Iterator[MutualTls]:
    folder = tmp_path_factory.mktemp("mutual-tls")
    logs, nginx_dir = folder / "logs", folder / "nginx"
    nginx_dir.mkdir()
    ours = issue_client_certificates(folder / "ours")
    theirs = issue_client_certificates(folder / "theirs")  # the same commands: another CA
    ports = NginxPorts()
    env = unit_env(CSRF_TRUSTED_ORIGINS=f"https://127.0.0.1:{ports.https}")
    running: list[cluster.Process] = []
    try:
        web, web_port = web_unit(env, logs)
        running.append(web)
        # The broker unit as written, on the port the kernel gives it (it logs which).
        argv = exec_start("taskweb-broker.service", env)
        argv[argv.index("--port") + 1] = "0"
        broker = start(argv, env, logs, "broker")
        running.append(broker)
        broker_port = servers.logged_port(broker.proc, broker.log_path, brokers.LISTENING, "the broker unit")
        main = nginx_config(nginx_dir, ports, [web_port, web_port], folder / "static", ours.ca, broker_port)
        listening = [ports.https, ports.api, ports.broker, ports.no_certificate, ports.refused_certificate]
        running.append(run_nginx(main, listening, env, logs))
        yield MutualTls(ports, nginx_dir / "fullchain.pem", ours, theirs)
    finally:
        stop_all(running)


def needs_mutual_tls(test):
    """A test of the site with client certificates: nginx and its stream module (on either
    database: nginx's checks do not depend on it)."""
    return WITH_NGINX(WITH_STREAM(test))


def api_get(port: int, path: str, context: ssl.SSLContext, token: str | None = None) -> tuple[int, Any]:
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=15)
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
    response = conn.getresponse()
    return response.status, json.loads(response.read())


def broker_lines(port: int, context: ssl.SSLContext, *commands: str) -> list[str]:
    """Send ``commands`` on one TLS connection; the replies, one line each (and what the
    server says before closing, if it closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as conn:
            lines = conn.makefile("rw", encoding="utf-8", newline="\n")
            replies = []
            for command in commands:
                lines.write(command + "\n")
                lines.flush()
                replies.append(lines.readline().rstrip("\n"))
            return replies if commands else [line.rstrip("\n") for line in lines]


def as_docs_say(text: str, port: int) -> str:
    """A docs/deploy.md client command with this test's address in place of the public name."""
    for old in ("taskweb.example.com:8443", "taskweb.example.com:7443"):
        text = text.replace(old, f"127.0.0.1:{port}")
    return text.replace('("taskweb.example.com", 7443)', f'("127.0.0.1", {port})').replace(
        'server_hostname="taskweb.example.com"', 'server_hostname="127.0.0.1"'
    )


@needs_mutual_tls
@pytest.mark.parametrize("certificate", ["none", "another CA"])
def test_the_api_port_refuses_a_client_without_a_certificate_from_the_client_ca(mutual_tls, certificate):
    client = None if certificate == "none" else mutual_tls.theirs.client
    status, body = api_get(mutual_tls.ports.api, "/api/queues", mutual_tls.trust(client), make_token())
    assert status == 403
    if client is None:
        assert body["detail"].startswith("A client certificate is required")
    else:
        assert body["detail"].startswith("The client certificate was refused (FAILED:")


@needs_mutual_tls
def test_curl_with_a_client_certificate_reaches_the_api_as_docs_deploy_md_says(mutual_tls):
    curl = as_docs_say(docs_blocks("### Clients")[0], mutual_tls.ports.api)
    env = {**os.environ, "TASKWEB_TOKEN": make_token(), "CURL_CA_BUNDLE": str(mutual_tls.server_certificate)}
    done = subprocess.run(
        ["bash", "-euc", curl], cwd=mutual_tls.ours.folder, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "default" in [queue["name"] for queue in json.loads(done.stdout)]


@needs_mutual_tls
def test_browsers_use_the_console_without_a_certificate_and_never_reach_the_api_there(mutual_tls):
    get_user_model().objects.create_superuser("operator", password="deploy-pass-5")
    site = f"https://127.0.0.1:{mutual_tls.ports.https}"
    assert cluster.log_in(site, "operator", "deploy-pass-5", context=mutual_tls.trust())
    status, body = api_get(mutual_tls.ports.https, "/api/queues", mutual_tls.trust(), make_token())
    assert status == 403 and body["detail"].startswith("The API is served on port 8443")


@needs_mutual_tls
@pytest.mark.parametrize(
    "certificate, refusal",
    [
        ("none", "ERR a client certificate is required: connect with one issued by the client CA"),
        ("another CA", "ERR the client certificate was refused: it is not issued by the client CA"),
    ],
)
def test_the_tcp_port_refuses_a_client_without_a_certificate_from_the_client_ca(
    mutual_tls, certificate, refusal
):
    client = None if certificate == "none" else mutual_tls.theirs.client
    # One line saying why, then the connection is closed: nothing reached runbroker.
    assert broker_lines(mutual_tls.ports.broker, mutual_tls.trust(client)) == [refusal]


def expired_certificate(issuer: ClientCertificates, folder: Path) -> tuple[Path, Path]:
    """A client certificate signed by ``issuer``'s CA that expired yesterday (openssl's
    ``req`` cannot date one in the past)."""
    ca = x509.load_pem_x509_certificate(issuer.ca.read_bytes())
    ca_key = serialization.load_pem_private_key((issuer.folder / "client-ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=10))
        .not_valid_after(now - timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    cert, key_file = folder / "expired.pem", folder / "expired.key"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert, key_file


@needs_mutual_tls
def test_an_expired_certificate_from_the_client_ca_is_refused_on_both_ports(mutual_tls, tmp_path):
    expired = expired_certificate(mutual_tls.ours, tmp_path)
    status, body = api_get(mutual_tls.ports.api, "/api/queues", mutual_tls.trust(expired), make_token())
    assert status == 403 and "(FAILED:certificate has expired)" in body["detail"]
    # nginx refuses it in the handshake: the connection closes before runbroker says a word.
    assert broker_lines(mutual_tls.ports.broker, mutual_tls.trust(expired)) == []


@needs_mutual_tls
def test_the_broker_unit_behind_nginx_still_asks_for_a_token(mutual_tls):
    context = mutual_tls.trust(mutual_tls.ours.client)
    assert broker_lines(mutual_tls.ports.broker, context, "LIST") == [
        "ERR authentication required: send AUTH <token> first"
    ]


@needs_mutual_tls
def test_behind_nginx_a_forged_x_forwarded_for_does_not_escape_the_address_lock_out(mutual_tls):
    """Login throttling counts the address nginx saw, not one the client wrote itself."""
    get_user_model().objects.create_superuser("bob", password="deploy-pass-5")
    site = f"https://127.0.0.1:{mutual_tls.ports.https}"

    def log_in(username: str, password: str, forged: str) -> tuple[int, bool]:
        headers = {"X-Forwarded-For": forged}
        status, cookies = cluster.try_log_in(site, username, password, mutual_tls.trust(), headers)
        return status, "sessionid" in cookies

    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(f"guess{n}", "wrong", f"192.0.2.{n}")
    assert log_in("bob", "deploy-pass-5", "192.0.2.99") == (429, False)


@needs_mutual_tls
def test_a_python_client_with_a_certificate_speaks_the_protocol_as_docs_deploy_md_says(mutual_tls):
    (snippet,) = [block for block in docs_blocks("### Clients") if block.startswith("import")]
    env = {**os.environ, "TASKWEB_TOKEN": make_token(), "SSL_CERT_FILE": str(mutual_tls.server_certificate)}
    done = subprocess.run(
        [sys.executable, "-c", as_docs_say(snippet, mutual_tls.ports.broker)],
        cwd=mutual_tls.ours.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["OK", "OK default"]


@needs_mutual_tls
def test_openssl_s_client_with_a_certificate_speaks_the_protocol_as_docs_deploy_md_says(mutual_tls):
    (line,) = [block for block in docs_blocks("### Clients") if block.startswith("openssl s_client")]
    argv = shlex.split(as_docs_say(line, mutual_tls.ports.broker))
    env = {**os.environ, "SSL_CERT_FILE": str(mutual_tls.server_certificate)}
    typed = subprocess.Popen(
        argv, cwd=mutual_tls.ours.folder, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        typed.stdin.write(f"AUTH {make_token()}\nLIST\n")
        typed.stdin.flush()
        assert [typed.stdout.readline(), typed.stdout.readline()] == ["OK\n", "OK default\n"]
    finally:
        typed.kill()
        typed.wait()


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
