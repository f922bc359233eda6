"""What a payload storage holds, for tests that count its objects."""

from __future__ import annotations

from django.core.files.storage import storages

from queues.models import Job

BIG = "y" * 100_000  # arguments past the default 64 KiB threshold
SMALL = "y" * 100


def stored_objects(alias: str = "payloads", folder: str = "") -> list[str]:
    """Every object's name in the storage, walking its folders (S3 prefixes alike)."""
    storage = storages[alias]
    try:
        folders, files = storage.listdir(folder)
    except FileNotFoundError:
        return []
    names = [f"{folder}/{name}" if folder else name for name in files]
    for sub in folders:
        names += stored_objects(alias, f"{folder}/{sub}" if folder else sub)
    return sorted(names)


def raw_row(job_id: int | str) -> dict:
    """The job's args, kwargs and result as the row holds them."""
    return Job.objects.values("args", "kwargs", "result").get(id=job_id)
