"""The site's settings with no LOGGING, as in a project fresh from ``startproject``."""

from taskweb.settings import *  # noqa: F403

LOGGING: dict = {}
