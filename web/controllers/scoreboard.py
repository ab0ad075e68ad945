"""The public, read-only miner scoreboard (no sign-in): the miners table and each miner's page
with what limits its weight in words, so miners can act on it without an account. Operators
switch it off in Settings (``web.public_scoreboard`` is the default); then it is a 404."""

from __future__ import annotations

from litestar import get
from litestar.exceptions import NotFoundException
from litestar.response import Template

from web.controllers.admin_miners import miner_page, miners_page
from web.controllers.admin_site import public_scoreboard_on
from web.controllers.common import Req
from web.state import Dashboard


async def _open(dash: Dashboard) -> None:
    if not await public_scoreboard_on(dash):
        raise NotFoundException("This validator does not publish its miner scoreboard.")


@get("/scoreboard")
async def scoreboard(request: Req, dash: Dashboard) -> Template:
    await _open(dash)
    return await miners_page(request, dash, public=True)


@get("/scoreboard/{hotkey:str}")
async def scoreboard_miner(request: Req, dash: Dashboard, hotkey: str) -> Template:
    await _open(dash)
    return await miner_page(request, dash, hotkey, public=True)
