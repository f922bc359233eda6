"""The site's settings plus the ``tests`` app, for the processes of the chaos suite.

Its users enqueue ``tests.tasks.chaos_mark`` by path through the REST API, and a
path from a client must name a registered task: installed as an app, ``tests`` has
its tasks module discovered in every process, as any app's is.
"""

from taskweb.settings import *  # noqa: F403

INSTALLED_APPS = [*INSTALLED_APPS, "tests"]  # noqa: F405
