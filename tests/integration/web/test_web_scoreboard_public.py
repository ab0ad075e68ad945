"""The public miner scoreboard: anyone reads the miners table and a miner's weight in words
(the dominant factor with its numbers); operators switch it off, then it is gone (404). The
operator's miner page shows the same words above the arithmetic."""

from __future__ import annotations

import re

from core.db.engine import Database
from protocol.catalog import Catalog
from scoring import ScoreboardReader
from tests.integration.web.conftest import Clients, Users, signed_in
from tests.support.dashboard import web_settings
from tests.support.scoreboard import flaky, hotkey, seed_scoreboard
from tests.support.scoring import clear_scoring_tables
from web.audit import PUBLIC_SCOREBOARD, SiteSettings


async def test_public_scoreboard_explains_in_words_and_can_be_switched_off(
    db: Database, dev_catalog: Catalog, users: Users, clients: Clients
) -> None:
    await clear_scoring_tables(db)
    # (The database is shared: another test may have switched it.)
    await SiteSettings(db, signup_default=False).set_flag(PUBLIC_SCOREBOARD, True, actor="test")
    await seed_scoreboard(db, dev_catalog, miners=6, periods=12, checks=600)
    failing = next(i for i in range(1, 7) if flaky(i))
    reader = ScoreboardReader.from_settings(web_settings(), db=db, redis=None, catalog=dev_catalog)
    detail = await reader.miner(hotkey(failing))
    assert detail is not None and detail.advice
    dominant = {a.task: a.dominant for a in detail.advice}

    anonymous = clients()
    table = await anonymous.get("/dashboard/scoreboard")
    assert table.status_code == 200 and 'id="miners"' in table.text
    assert f"/dashboard/scoreboard/{hotkey(failing)}" in table.text
    assert "/dashboard/admin" not in table.text  # no operator links
    page = await anonymous.get(f"/dashboard/scoreboard/{hotkey(failing)}")
    assert page.status_code == 200 and 'id="in-words"' in page.text
    for task, top in dominant.items():
        assert top is not None
        assert f"{top.label} limited this miner most." in page.text, task
    assert re.search(r"\d+ of \d+ requests (failed|were answered 429) in period #\d+", page.text)
    assert "Evidence" not in page.text  # the checker's evidence stays with the operators
    login = await anonymous.get("/dashboard/login")
    assert "/dashboard/scoreboard" in login.text

    admin = await signed_in(clients, await users("admin"))
    operator_page = await admin.get(f"/dashboard/admin/miners/{hotkey(failing)}")
    assert 'id="in-words"' in operator_page.text and "Evidence" in operator_page.text
    saved = await admin.post_form("/dashboard/admin/settings", {"signup_enabled": ""})
    assert saved.status_code == 303
    assert (await anonymous.get("/dashboard/scoreboard")).status_code == 404
    assert (await anonymous.get(f"/dashboard/scoreboard/{hotkey(failing)}")).status_code == 404
    assert "/dashboard/scoreboard" not in (await anonymous.get("/dashboard/login")).text
    await admin.post_form("/dashboard/admin/settings", {"public_scoreboard": "on"})
    assert (await anonymous.get("/dashboard/scoreboard")).status_code == 200
