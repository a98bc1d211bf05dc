"""Crontab expressions (`full_sync_cron`), read as cron reads them. Pure.

`crontab_fields("30 2 * * 0")` checks an expression and returns its five fields in the
vocabulary of APScheduler's CronTrigger (dirsync.scheduler builds the trigger). Two
differences from cron are bridged here rather than left to surprise an administrator:

* APScheduler 3 numbers weekdays from Monday = 0; cron from Sunday = 0 (7 is Sunday too).
  The day-of-week field is therefore handed over as day names (`sun`, `mon,wed`).
* Cron runs a job when *either* a restricted day of month or a restricted day of week
  matches; APScheduler requires both. Restricting both is refused with that explanation
  instead of running on other days than the expression says.

Times are UTC. Accepted: `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`,
and month and day names (`jan`, `mon`). Not accepted: `@daily` and other nicknames, `?`,
`L`, `W`, `#`.
"""

from __future__ import annotations

import re

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's 0..6
# (name in messages, APScheduler field, lowest, highest, names from `lowest` on)
_FIELDS = (
    ("minute", "minute", 0, 59, ()),
    ("hour", "hour", 0, 23, ()),
    ("day of month", "day", 1, 31, ()),
    ("month", "month", 1, 12, _MONTHS),
    ("day of week", "day_of_week", 0, 7, _DAYS),
)
_ITEM = re.compile(r"(?:(\*)|([a-z0-9]+)(?:-([a-z0-9]+))?)(?:/([0-9]+))?")


def crontab_fields(expression: str) -> dict[str, str]:
    """The CronTrigger keyword arguments for a five-field crontab expression; ValueError with
    the reason when it is not one."""
    parts = expression.lower().split()
    if len(parts) != 5:
        raise ValueError(f"expected five fields (minute hour day-of-month month day-of-week), "
                         f"got {len(parts)} in {expression!r}")
    out: dict[str, str] = {}
    days: dict[str, set[int] | None] = {}
    for text, (label, field, low, high, names) in zip(parts, _FIELDS):
        values = _values(text, label, low, high, names)
        days[label] = values
        if field == "day_of_week":
            out[field] = "*" if values is None else ",".join(
                _DAYS[d % 7] for d in sorted({v % 7 for v in values}))
        else:
            out[field] = text
    if days["day of month"] is not None and days["day of week"] is not None:
        raise ValueError("restrict the day of month or the day of week, not both (put '*' in "
                         "one of them): cron runs when either matches, dirsync's scheduler "
                         "only when both do")
    return out


def _values(text: str, label: str, low: int, high: int,
            names: tuple[str, ...]) -> set[int] | None:
    """The values a field selects, or None for an unrestricted `*`."""
    if text == "*":
        return None
    selected: set[int] = set()
    for item in text.split(","):
        match = _ITEM.fullmatch(item)
        if not match:
            raise ValueError(f"the {label} field has {item!r}, which is not a number, a range "
                             "a-b, a step */n or a name")
        star, first, last, step = match.groups()
        if star:
            start, end = low, high
        else:
            start = _number(first, label, low, high, names)
            end = _number(last, label, low, high, names) if last else start
            if end < start:
                raise ValueError(f"the {label} field's range {item!r} runs backwards")
            if step and not last:
                end = high  # cron reads "5/15" as "5-max/15"
        stride = int(step) if step else 1
        if stride < 1:
            raise ValueError(f"the {label} field's step in {item!r} must be at least 1")
        selected.update(range(start, end + 1, stride))
    return selected


def _number(token: str, label: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if token.isdigit():
        value = int(token)
    elif token in names:
        value = names.index(token) + (1 if names is _MONTHS else 0)
    else:
        raise ValueError(f"the {label} field has {token!r}, which is not a number"
                         + (f" or one of {', '.join(names)}" if names else ""))
    if not low <= value <= high:
        raise ValueError(f"the {label} field's {value} is outside {low}-{high}")
    return value
