"""The statement on the customer's Billing page and the operator's account page: billing's
``AccountService.statement`` (one line per request, money movements each their own) with the
filters of the query string (kind, key, model, dates), keyset pages, and the CSV export of
every matching line (streamed page by page; amounts in the same six-decimal format as the
page, without thousands separators)."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from billing import LINE_KINDS, StatementFilter, StatementLine, format_credits
from web.state import Dashboard

PAGE = 50
CSV_PAGE = 500
KIND_LABELS = {
    "request": "Requests",
    "topup": "Top-ups",
    "grant": "Grants",
    "refund": "Refunds",
    "adjustment": "Adjustments",
}
CSV_COLUMNS = (
    "time_utc",
    "kind",
    "amount_credits",
    "balance_after_credits",
    "key",
    "model",
    "request_id",
    "status",
    "input_tokens",
    "output_tokens",
    "images",
    "by",
    "reason",
    "reference",
)


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


@dataclass(frozen=True)
class StatementQuery:
    kind: str = ""
    key_id: int | None = None
    task: str = ""
    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, params: Mapping[str, str], models: list[str]) -> StatementQuery:
        kind = params.get("kind", "")
        key = params.get("key", "")
        task = params.get("model", "")
        return cls(
            kind=kind if kind in LINE_KINDS else "",
            key_id=int(key) if key.isdigit() and 0 < int(key) < 2**62 else None,
            task=task if task in models else "",
            start=_day(params.get("from", "")),
            end=_day(params.get("to", "")),
        )

    def filters(self) -> StatementFilter:
        return StatementFilter(
            kinds=(self.kind,) if self.kind else (),
            key_id=self.key_id,
            task=self.task or None,
            start=self.start,
            end=self.end,
        )

    @property
    def active(self) -> bool:
        return bool(self.kind or self.key_id or self.task or self.start or self.end)

    def query_string(self, **extra: str) -> str:
        values = {
            "kind": self.kind,
            "key": str(self.key_id or ""),
            "model": self.task,
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            **extra,
        }
        text = urlencode({k: v for k, v in values.items() if v})
        return f"?{text}" if text else ""


async def statement_page(
    dash: Dashboard, account_id: int, query: StatementQuery, before: int | None
) -> tuple[list[StatementLine], int | None]:
    """A page of lines and the ``before`` of the next (None on the last page)."""
    lines = await dash.billing.accounts.statement(
        account_id, query.filters(), limit=PAGE + 1, before_id=before
    )
    return lines[:PAGE], lines[PAGE - 1].id if len(lines) > PAGE else None


def _text(value: str) -> str:
    """Free text (names, reasons) can never start a spreadsheet formula."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def _row(line: StatementLine) -> list[str]:
    return [
        line.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        line.kind,
        format_credits(line.amount),
        format_credits(line.balance_after),
        _text(line.key_name),
        line.task,
        _text(line.request_id),
        line.status,
        str(line.input_tokens) if line.kind == "request" else "",
        str(line.output_tokens) if line.kind == "request" else "",
        str(line.images) if line.kind == "request" else "",
        _text(line.actor) if line.kind != "request" else "",
        _text(line.reason),
        _text(line.reference or ""),
    ]


def _csv_line(values: list[str] | tuple[str, ...]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow(values)
    return buffer.getvalue().encode()


async def statement_csv(
    dash: Dashboard, account_id: int, query: StatementQuery
) -> AsyncIterator[bytes]:
    """Every matching line, newest first, as CSV (a header row first)."""
    yield _csv_line(CSV_COLUMNS)
    before: int | None = None
    while True:
        lines = await dash.billing.accounts.statement(
            account_id, query.filters(), limit=CSV_PAGE, before_id=before
        )
        for line in lines:
            yield _csv_line(_row(line))
        if len(lines) < CSV_PAGE:
            return
        before = lines[-1].id
