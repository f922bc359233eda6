"""The channel layer that carries the console's fragments from the poller to the sockets.

The console's groups are per process (live.py), so any layer serves: the project's
default one when it configured ``CHANNEL_LAYERS`` (the site's channels-redis, with
REDIS_URL), otherwise an in-memory layer of the console's own. A project fresh from
startproject configures none, and Channels would then give the sockets no layer at all.
"""

from __future__ import annotations

from channels.layers import BaseChannelLayer, InMemoryChannelLayer, channel_layers, get_channel_layer

ALIAS = "queues.console"
"""The alias the console's consumer and poller use (set by ``ensure``, not in settings)."""


def ensure() -> BaseChannelLayer:
    """The console's layer, chosen on first use (and again after CHANNEL_LAYERS changes)."""
    if ALIAS not in channel_layers.backends:
        channel_layers.set(ALIAS, get_channel_layer() or InMemoryChannelLayer())
    return channel_layers.backends[ALIAS]
