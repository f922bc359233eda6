"""A producer that keeps a steady load on Taskweb, for the soak test (bench/soak.py).

    DATABASE_URL=... python -m bench.steady --rate 500 --seconds 1800 --stamps FILE

Every tick (0.1 s) it enqueues, with one ``enqueue_many``, as many start-stamping jobs
(``bench.tasks.stamp``) as the rate says are due by now, so a slow tick is caught up by
the next one instead of lowering the rate. Each job carries the wall-clock time of its
enqueue; the job writes it beside its start time into FILE, which is how the soak
measures enqueue -> start from outside the worker. Prints one JSON line at the end:
``{"sent": N, "seconds": S}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

TICK = 0.1


def due(rate: float, elapsed: float) -> int:
    """Jobs that should have been enqueued ``elapsed`` seconds after the start."""
    return int(rate * elapsed)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, required=True, help="jobs per second")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--stamps", required=True, help="file the jobs append their start to")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "taskweb.settings")
    import django

    django.setup()
    from bench.tasks import stamp

    began = time.monotonic()
    sent = 0
    while (elapsed := time.monotonic() - began) < args.seconds:
        if batch := due(args.rate, elapsed) - sent:
            now = time.time()
            stamp.enqueue_many([((args.stamps, now), {})] * batch)
            sent += batch
        time.sleep(max(0.0, TICK - (time.monotonic() - began - elapsed)))
    print(json.dumps({"sent": sent, "seconds": time.monotonic() - began}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
