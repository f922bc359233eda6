"""The README's "Encrypted payloads" commands, run word for word in a shell against the test database."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from queues import encryption
from queues.models import Job

from .console_helpers import make_user
from .processes import ROOT, child_env
from .test_encryption import KEYS, stored_rows
from .test_package import readme_blocks

pytestmark = pytest.mark.django_db(transaction=True)

ENQUEUE = re.compile(r"^\$M taskctl enqueue .*$", re.M)


def test_the_readmes_encryption_and_rotation_commands_do_what_it_says():
    make_user("alice", perms=("view_job", "view_payloads"))
    start, rotate = readme_blocks("Encrypted payloads")
    # The job's id is the one enqueue prints ("7" in the README); every other word is as written.
    capture = 'JOB=$(echo "$OUT" | sed -E "s/Enqueued job ([0-9]+).*/\\1/")'
    start = ENQUEUE.sub(lambda m: f'OUT=$({m.group(0)}); echo "$OUT"; {capture}', start)
    start = start.replace("jobs show 7", 'jobs show "$JOB"')
    script = "\n".join(["set -e", start, "echo '--- rotate'", rotate, f'echo "final=${KEYS}"'])
    env = {name: value for name, value in child_env().items() if name != KEYS}
    done = subprocess.run(
        ["bash", "-c", script.replace(".venv/bin/python", sys.executable)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    shown, rotated = done.stdout.split("--- rotate")
    hidden_view, alice_view = shown.split("\nid: ")[1:]
    assert "args: 🔒 encrypted" in hidden_view and "kwargs: 🔒 encrypted" in hidden_view
    assert "4111 1111 1111 1111" not in hidden_view
    assert '"body": "4111 1111 1111 1111"' in alice_view
    final = rotated.split("final=")[1].strip()
    new_id = encryption.key_id(final.encode())
    assert f"Re-encrypted 1 jobs under key {new_id} in 1 batches; 0 were already under it." in rotated
    assert Job.objects.get().meta["encrypted"] == new_id
    assert "4111" not in stored_rows()
