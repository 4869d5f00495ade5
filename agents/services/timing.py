"""When an agent's ticks fall: cron (croniter, in the agent's time zone) and intervals.

Pure functions of the agent's trigger fields and a time; no database.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter
from django.conf import settings

from cortex import errors

#: Ticks looked at when checking a cron expression's shortest gap.
GAP_SAMPLES = 64
#: Most missed ticks walked after downtime before jumping straight to the present.
MAX_WALK = 1000


class InvalidTrigger(errors.ValidationFailed):
    code = "invalid_trigger"
    default_message = "The trigger is not valid."


def min_interval() -> float:
    return float(settings.AGENT_MIN_INTERVAL_S)


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; InvalidTrigger for anything else."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidTrigger(
            "Unknown time zone.", fields={"trigger": [f"Unknown time zone {name!r}."]}
        ) from exc


def check_cron(expression: str, tz: str) -> None:
    """Five fields only, parseable, and never two ticks closer than the minimum interval."""
    fields = expression.split()
    if len(fields) != 5:
        raise InvalidTrigger(
            "A cron expression has five fields.", fields={"trigger": ["Use five cron fields."]}
        )
    if not croniter.is_valid(expression):
        raise InvalidTrigger(
            "The cron expression cannot be read.", fields={"trigger": ["Invalid."]}
        )
    start = datetime.now(zone(tz))
    try:
        it = croniter(expression, start)
        previous = it.get_next(datetime)
        for _ in range(GAP_SAMPLES):
            current = it.get_next(datetime)
            if (current - previous).total_seconds() < min_interval():
                raise InvalidTrigger(
                    "This cron expression fires too often.",
                    fields={"trigger": [f"Ticks must be at least {min_interval():g} s apart."]},
                )
            previous = current
    except (CroniterError, ValueError, OverflowError) as exc:
        raise InvalidTrigger(
            "The cron expression cannot be read.", fields={"trigger": ["Invalid."]}
        ) from exc


def check_interval(seconds: int) -> None:
    if seconds < min_interval():
        raise InvalidTrigger(
            "The interval is too short.",
            fields={"trigger": [f"Must be at least {min_interval():g} seconds."]},
        )


def next_after(
    *, kind: str, after: datetime, interval: int | None, cron: str, tz: str, anchor: datetime
) -> datetime | None:
    """The first tick strictly after `after`; None for manual agents."""
    if kind == "interval" and interval:
        step = timedelta(seconds=interval)
        if after < anchor:
            return anchor
        count = int((after - anchor) / step) + 1
        return anchor + count * step
    if kind == "cron" and cron:
        local = after.astimezone(zone(tz))
        found: datetime = croniter(cron, local).get_next(datetime)
        return found.astimezone(after.tzinfo)
    return None


def due_ticks(
    *,
    kind: str,
    first: datetime,
    now: datetime,
    interval: int | None,
    cron: str,
    tz: str,
) -> tuple[list[datetime], datetime | None]:
    """Ticks from `first` (itself due) up to `now`, oldest first, and the next one after `now`.

    After a long downtime only the last `MAX_WALK` are walked; older ones are missed anyway.
    """
    ticks = [first]
    anchor = first
    while len(ticks) < MAX_WALK:
        nxt = next_after(
            kind=kind, after=ticks[-1], interval=interval, cron=cron, tz=tz, anchor=anchor
        )
        if nxt is None or nxt > now:
            return ticks, nxt
        ticks.append(nxt)
    # Too many to walk: jump to the last tick at or before now.
    if kind == "interval" and interval:
        step = timedelta(seconds=interval)
        last = anchor + int((now - anchor) / step) * step
    else:
        local = now.astimezone(zone(tz))
        last = croniter(cron, local).get_prev(datetime).astimezone(now.tzinfo)
    return [*ticks, last], next_after(
        kind=kind, after=now, interval=interval, cron=cron, tz=tz, anchor=anchor
    )
