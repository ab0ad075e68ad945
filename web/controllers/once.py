"""The one-time view after a form that creates a secret (``web.once``): the form's handler
calls ``show_once`` (303 to ``/once/<id>`` with the pad's cookie); ``once_view`` shows the key's
secret or the invitation link once. A reload finds nothing and says so (410), it never creates
a second key."""

from __future__ import annotations

from litestar import get
from litestar.response import Redirect, Template

from billing import BillingNotFound
from web.auth import cookie, expired_cookie
from web.controllers.common import Req, api_base, sample_model
from web.once import COOKIE, OneTimeViews
from web.render import page
from web.sessions import SignedIn
from web.state import Dashboard


async def show_once(
    request: Req,
    dash: Dashboard,
    me: SignedIn,
    kind: str,
    text: str,
    *,
    subject_id: int,
    back: str,
) -> Redirect:
    views = OneTimeViews(dash.db)
    view_id, pad = await views.create(me.session_id, kind, text, subject_id=subject_id, back=back)
    path = dash.url(f"/once/{view_id}")
    pad_cookie = cookie(dash, request, COOKIE, pad, max_age=views.ttl_s, path=path)
    return Redirect(path=path, status_code=303, cookies=[pad_cookie])


def _active(back: str) -> str:
    if back.startswith("/admin/users"):
        return "users"
    return "accounts" if back.startswith("/admin") else "keys"


@get("/once/{view_id:str}")
async def once_view(request: Req, dash: Dashboard, me: SignedIn, view_id: str) -> Template:
    shown = await OneTimeViews(dash.db).take(view_id, me.session_id, request.cookies.get(COOKIE))
    clear = expired_cookie(dash, request, COOKIE, dash.url(f"/once/{view_id}"))
    back = shown.back if shown is not None else ""
    active = _active(back)
    response: Template | None = None
    if shown is not None and shown.kind in ("key", "rotated"):
        try:
            key = await dash.billing.keys.get(shown.subject_id)
        except BillingNotFound:
            key = None
        if key is not None:
            response = page(
                request,
                dash,
                "key_secret.html",
                title="Your new API key",
                secret=shown.text,
                key=key,
                back=back,
                rotated=shown.kind == "rotated",
                base_url=api_base(request, dash),
                model=sample_model(dash),
                active=active,
                cookies=[clear],
            )
    elif shown is not None and shown.kind == "invite":
        pending = await dash.invitations.pending()
        invitation = next((i for i in pending if i.id == shown.subject_id), None)
        response = page(
            request,
            dash,
            "admin/invite_link.html",
            title="Invitation link",
            invitation=invitation,
            link=shown.text,
            back=back,
            active=active,
            cookies=[clear],
        )
    if response is None:
        response = page(
            request,
            dash,
            "once_gone.html",
            status=410,
            title="Already shown",
            active=active,
            cookies=[clear],
        )
    response.headers["cache-control"] = "no-store"
    return response
