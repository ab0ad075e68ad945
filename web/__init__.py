"""The web dashboard: operators run the validator's API business (accounts, keys, credits,
prices, revenue and traffic charts, audit log) and watch its miners, checker and chain through
scoring's read API; customers manage their own keys, usage and credits. Served by the gateway
under ``/dashboard``; see ``web.app`` and docs/dashboard.md.

Public surface:

- ``create_dashboard(settings, *, db, billing, redis, catalog, scoreboard=None, base_url="",
  mount_path=...)`` -> the dashboard's Litestar app; ``mount_dashboard(app, "/dashboard")``
  -> the route handler that serves it inside another Litestar app.
- ``UserService`` (dashboard users, used by ``sn19 operators``) and the password helpers.
"""

from __future__ import annotations

from web.app import MOUNT_PATH, create_dashboard, mount_dashboard
from web.passwords import hash_password, password_problem, verify_password
from web.users import ROLES, STAFF_ROLES, User, UserError, UserService

__all__ = [
    "MOUNT_PATH",
    "ROLES",
    "STAFF_ROLES",
    "User",
    "UserError",
    "UserService",
    "create_dashboard",
    "hash_password",
    "mount_dashboard",
    "password_problem",
    "verify_password",
]
