"""The server miners run: btauth/1-verified OpenAI endpoints served from ``inference`` engines,
capacity announcements and health. ``create_app(settings)`` is the composition root;
``miner_server.server.run(settings)`` serves it."""

from miner_server.app import create_app
from miner_server.settings import MinerSettings

__all__ = ["MinerSettings", "create_app"]
