"""Large payloads in an S3 bucket: django-storages' S3 backend against moto's S3 server,
run in this test, with the site's own settings (PAYLOADS_BUCKET and friends)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from cryptography.fernet import Fernet
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from django.utils import timezone
from moto.core.authorization import enable_iam_authentication
from moto.server import ThreadedMotoServer

from queues import encryption, lifecycle, offload, values
from queues.exceptions import PayloadUnavailable
from queues.models import Job, OffloadedPayload
from queues.testing import run_jobs
from taskweb.settings import payload_storage

from . import tasks
from .api import ApiClient
from .factories import make_queue
from .payloads import BIG, raw_row, stored_objects
from .processes import WorkerProcess
from .test_deploy import docs_blocks
from .test_encryption import KEYS, SECRET
from .test_package import readme_block

pytestmark = pytest.mark.django_db(transaction=True)  # deletions remove objects on commit

BUCKET = "taskweb-payloads-test"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a port the system gave it (port 0), in a thread of this process."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()  # the port the system gave
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch) -> dict[str, str]:
    """The environment that points the site (and its workers) at the bucket."""
    env = {
        "PAYLOADS_BUCKET": BUCKET,
        "PAYLOADS_S3_ENDPOINT_URL": s3_endpoint,
        "PAYLOADS_S3_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def bucket(s3_env: dict[str, str], settings) -> Iterator[object]:
    """An empty bucket, and the site's "payloads" storage configured as the site configures it."""
    client = boto3.client("s3", endpoint_url=s3_env["PAYLOADS_S3_ENDPOINT_URL"], region_name="us-east-1")
    client.create_bucket(Bucket=BUCKET)
    settings.STORAGES = {**settings.STORAGES, "payloads": payload_storage()}
    yield client
    for key in keys(client):
        client.delete_object(Bucket=BUCKET, Key=key)
    client.delete_bucket(Bucket=BUCKET)


def keys(client) -> list[str]:
    """Every object in the bucket, counted by S3 itself."""
    listing = client.list_objects_v2(Bucket=BUCKET)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def point_at_a_missing_bucket(settings) -> None:
    storage = payload_storage()
    storage["OPTIONS"]["bucket_name"] = "no-such-bucket"
    settings.STORAGES = {**settings.STORAGES, "payloads": storage}


def test_the_site_uses_django_storages_s3_backend_when_a_bucket_is_named(s3_env):
    assert payload_storage() == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": BUCKET,
            "region_name": "us-east-1",
            "endpoint_url": s3_env["PAYLOADS_S3_ENDPOINT_URL"],
        },
    }


@pytest.mark.process
def test_a_worker_fetches_arguments_from_the_bucket_and_stores_its_result_there(
    tmp_path: Path, bucket, s3_env
):
    result = tasks.echo.enqueue(BIG)
    (name,) = keys(bucket)
    assert raw_row(result.id)["kwargs"]["$offloaded"]["name"] == name
    worker = WorkerProcess("--burst", log_dir=tmp_path, **s3_env)
    assert worker.wait() == 0, worker.output()
    assert tasks.echo.get_result(result.id).return_value == BIG, worker.output()
    assert len(keys(bucket)) == 2, "the arguments and the result"
    assert stored_objects() == keys(bucket), "the storage API sees what S3 holds"
    Job.objects.update(finished_at=timezone.now() - timedelta(days=8))
    assert lifecycle.prune_finished() == 1
    assert offload.sweep() == 2, "a worker's janitor runs this after pruning"
    assert keys(bucket) == [] and not OffloadedPayload.objects.exists()


def test_deleting_purging_and_deleting_a_queue_leave_no_object_in_the_bucket(bucket):
    make_queue("bulky")
    deleted = tasks.echo.enqueue(BIG)
    tasks.echo.enqueue(BIG)
    tasks.echo.using(queue_name="bulky").enqueue(BIG)
    assert len(keys(bucket)) == 3
    lifecycle.delete_jobs([int(deleted.id)])
    assert len(keys(bucket)) == 2
    lifecycle.purge_queue("default")
    assert len(keys(bucket)) == 1
    lifecycle.delete_queue("bulky")
    assert keys(bucket) == []


def test_a_bulk_enqueue_stores_each_large_job_once_and_all_or_nothing(bucket):
    make_queue("default")
    specs = [values.JobSpec("tests.tasks.echo", args=[BIG]) for _ in range(3)]
    ids = [job_id for job_id, _ in lifecycle.enqueue_many(specs)]
    assert len(keys(bucket)) == 3
    assert [tasks.echo.get_result(str(job_id)).args for job_id in ids] == [[BIG]] * 3
    with pytest.raises(ValueError):
        lifecycle.enqueue_many(specs, batch_size=0)  # the insert fails inside the transaction
    assert len(keys(bucket)) == 3 and Job.objects.count() == 3


def test_key_rotation_stores_encrypted_objects_again_in_the_bucket_and_deletes_the_old_ones(
    bucket, monkeypatch
):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    monkeypatch.setenv(KEYS, old)
    done = tasks.secret_sum.enqueue(2, 3, label=SECRET + BIG)
    run_jobs()
    waiting = tasks.secret_sum.enqueue(4, 5, label=SECRET + BIG)
    before = keys(bucket)
    assert len(before) == 3, "the arguments of both, the result of one"
    monkeypatch.setenv(KEYS, f"{new},{old}")
    assert lifecycle.rotate_keys(batch=1).objects == 3
    after = keys(bucket)
    assert len(after) == 3 and not set(after) & set(before), "no orphan, none lost"
    assert after == sorted(OffloadedPayload.objects.values_list("name", flat=True))
    monkeypatch.setenv(KEYS, new)  # the old key gone: everything opens with the new one alone
    assert tasks.secret_sum.get_result(done.id).return_value == {"sum": 5, "label": SECRET + BIG}
    assert tasks.secret_sum.get_result(waiting.id).kwargs == {"label": SECRET + BIG}
    new_id = encryption.key_id(new.encode())
    for key in after:
        text = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        assert {match.group(1) for match in encryption.SEALED.finditer(text)} == {new_id}


def test_a_missing_bucket_refuses_the_enqueue_clearly_and_changes_nothing(bucket, settings):
    point_at_a_missing_bucket(settings)
    with pytest.raises(PayloadUnavailable, match="The payload could not be stored as taskweb-payloads/"):
        tasks.echo.enqueue(BIG)
    assert not Job.objects.exists() and not OffloadedPayload.objects.exists()


def test_an_enqueue_the_storage_refuses_is_a_503_from_the_api(bucket, settings):
    point_at_a_missing_bucket(settings)
    response = ApiClient().post("/jobs", {"task": "tests.tasks.echo", "args": [BIG]})
    assert response.status_code == 503
    assert response.json()["detail"].startswith("The payload could not be stored as taskweb-payloads/")
    assert not Job.objects.exists()


def test_the_readme_settings_send_large_payloads_to_the_bucket_they_name(s3_env, settings):
    """README "Large payloads", its settings block as written, against the S3 server of this test."""
    block = readme_block("Large payloads", "STORAGES = {")
    names: dict[str, object] = {}
    exec(block, names)  # the README's own settings
    readme_bucket = names["STORAGES"]["payloads"]["OPTIONS"]["bucket_name"]
    client = boto3.client("s3", endpoint_url=s3_env["PAYLOADS_S3_ENDPOINT_URL"], region_name="eu-west-1")
    client.create_bucket(Bucket=readme_bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    settings.AWS_S3_ENDPOINT_URL = s3_env["PAYLOADS_S3_ENDPOINT_URL"]  # django-storages' own setting
    for name, value in names.items():
        if name.isupper():
            setattr(settings, name, value)
    small, large = tasks.echo.enqueue("x" * 1000), tasks.echo.enqueue(BIG)
    listing = client.list_objects_v2(Bucket=readme_bucket)["Contents"]
    assert [item["Key"] for item in listing] == [raw_row(large.id)["kwargs"]["$offloaded"]["name"]]
    assert raw_row(small.id)["args"] == ["x" * 1000]
    assert tasks.echo.get_result(large.id).args == [BIG]
    lifecycle.delete_jobs([int(large.id)])
    assert "Contents" not in client.list_objects_v2(Bucket=readme_bucket)
    client.delete_bucket(Bucket=readme_bucket)


@pytest.mark.skipif(not shutil.which("aws"), reason="no aws command")
def test_the_deploy_docs_bucket_and_policy_let_taskweb_do_its_work_and_no_more(
    s3_endpoint, tmp_path, settings, monkeypatch
):
    """docs/deploy.md's commands, word for word with the aws command, against moto's S3 and
    IAM (AWS_ENDPOINT_URL), then Taskweb with the new user's keys and IAM enforced. (moto
    checks actions and resources, not the ``s3:prefix`` condition of the listing.)"""
    policy, commands, _install, environment = docs_blocks("## Large payloads in an S3 bucket")
    (tmp_path / "taskweb-payloads-policy.json").write_text(policy)
    admin = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_DEFAULT_REGION": "eu-west-1"}
    admin.update(AWS_ACCESS_KEY_ID="admin", AWS_SECRET_ACCESS_KEY="admin")  # an administrator
    answers = [
        subprocess.run(
            shlex.split(line),
            cwd=tmp_path,
            env={**os.environ, **admin},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for line in commands.splitlines()
    ]
    key = json.loads(answers[-1])["AccessKey"]
    env = dict(line.split("=", 1) for line in environment.splitlines())
    env.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
    env["PAYLOADS_S3_ENDPOINT_URL"] = s3_endpoint
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = {**settings.STORAGES, "payloads": payload_storage()}
    storage = storages["payloads"]
    with enable_iam_authentication():
        result = tasks.echo.enqueue(BIG)  # PutObject
        assert tasks.echo.get_result(result.id).args == [BIG]  # GetObject
        name = raw_row(result.id)["kwargs"]["$offloaded"]["name"]
        folder = name.rsplit("/", 1)[0]
        assert storage.listdir(folder)[1] == [name.rsplit("/", 1)[1]]  # ListBucket, as the sweep lists
        with pytest.raises(ClientError, match="AccessDenied"):  # nothing outside taskweb-payloads/
            storage.save("elsewhere.json", ContentFile(b"{}"))
        lifecycle.delete_jobs([int(result.id)])  # DeleteObject
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="eu-west-1", **_keys(admin))
    assert "Contents" not in client.list_objects_v2(Bucket=env["PAYLOADS_BUCKET"])


def _keys(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
