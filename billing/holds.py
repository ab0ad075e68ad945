"""The values the money path hands to the gateway: an open ``Hold`` and its ``Settlement``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from billing.money import format_credits
from core.db.tables.billing import Hold as HoldRow
from protocol.catalog import Price


@dataclass(frozen=True)
class Hold:
    """An open reservation; the gateway keeps it for the request's lifetime."""

    id: int
    account_id: int
    key_id: int
    request_id: str
    task: str
    kind: str
    amount: int
    price: Price
    expires_at: datetime
    # Available balance right after the hold was taken.
    balance: int
    spend_day: str | None = None
    spend_month: str | None = None

    def headers(self) -> dict[str, str]:
        """For responses whose headers leave before the cost is known (streams)."""
        return {
            "x-sn19-hold": format_credits(self.amount),
            "x-sn19-balance": format_credits(self.balance),
        }


@dataclass(frozen=True)
class Settlement:
    hold_id: int
    # Micro-credits charged for the request (0 for a release).
    cost: int
    # Available balance after the settle.
    balance: int
    status: str
    # True when the hold had already been closed and nothing changed now.
    replayed: bool = False

    def headers(self) -> dict[str, str]:
        return {
            "x-sn19-cost": format_credits(self.cost),
            "x-sn19-balance": format_credits(self.balance),
        }


def hold_actor(hold: Hold) -> str:
    return f"key:{hold.key_id}"


def hold_from_row(row: HoldRow) -> Hold:
    return Hold(
        id=row.id,
        account_id=row.account_id,
        key_id=row.key_id,
        request_id=row.request_id,
        task=row.task,
        kind=row.kind,
        amount=row.amount,
        price=Price(
            input_per_million=row.price_input,
            output_per_million=row.price_output,
            per_step=row.price_step,
        ),
        expires_at=row.expires_at,
        balance=0,
        spend_day=row.spend_day,
        spend_month=row.spend_month,
    )
