"""Hotel-specific intent handlers (the rest use edgepipe's built-in handlers).

Each handler takes a HandlerContext and returns a HandlerResult; refusals come from the data
rules in rules.yaml, checked before the handler runs.
"""

from __future__ import annotations

from datetime import time

from edgepipe.actions.handlers import HandlerContext, HandlerResult
from edgepipe.nlu.timeparse import TimeOfDay, parse_time_of_day


def _clock(value: str) -> time:
    hour, minute = (int(p) for p in value.split(":"))
    return time(0, 0) if hour == 24 else time(hour, minute)


def facility_hours(ctx: HandlerContext) -> HandlerResult:
    """Opening hours of a facility from facts.yaml, with whether it is open right now."""
    facility = str(ctx.slots["facility"])
    info = ctx.facts["facilities"][facility]
    hours = info["hours"]
    if hours["open"] == "00:00" and hours["close"] == "24:00":
        return HandlerResult(
            response="always_open",
            data={"name": info["name"], "note": info.get("note", "open 24 hours")},
        )
    weekend = ctx.now.weekday() >= 5 and "weekend_hours" in info
    today = info["weekend_hours"] if weekend else hours
    extras = []
    if "weekend_hours" in info and not weekend:
        extras.append(
            f"{info['weekend_hours']['open']} to {info['weekend_hours']['close']} at weekends"
        )
    if "lunch_hours" in info:
        extras.append(f"lunch {info['lunch_hours']['open']} to {info['lunch_hours']['close']}")
    start, end, now = _clock(today["open"]), _clock(today["close"]), ctx.now.time()
    open_now = start <= now < end if start < end else (now >= start or now < end)
    if "lunch_hours" in info:
        lunch = info["lunch_hours"]
        open_now = open_now or _clock(lunch["open"]) <= now < _clock(lunch["close"])
    return HandlerResult(
        data={
            "name": info["name"],
            "open": today["open"],
            "close": today["close"],
            "extra": "; ".join(extras),
            "open_now": open_now,
        }
    )


def wakeup_call(ctx: HandlerContext) -> HandlerResult:
    """Schedule a wake-up call at the next occurrence of the requested time."""
    slot = ctx.intent.slots["time"]
    hour, minute = (int(p) for p in str(slot.value).split(":"))
    said = parse_time_of_day(slot.text, prefer="morning", now=ctx.now)
    day_offset = said.day_offset if said is not None else None
    due = TimeOfDay(hour=hour, minute=minute, day_offset=day_offset).next_occurrence(ctx.now)
    request = ctx.state.add_request(
        "wakeup", {"time": str(slot.value)}, created_at=ctx.now, due_at=due
    )
    days = (due.date() - ctx.now.date()).days
    day = "today" if days == 0 else "tomorrow" if days == 1 else due.strftime("on %A")
    return HandlerResult(
        data={"request_id": request.request_id, "day": day, "due": due.isoformat()}
    )


def cancel_wakeup_call(ctx: HandlerContext) -> HandlerResult:
    """Cancel every open wake-up call for the room."""
    cancelled = ctx.state.cancel_requests("wakeup")
    return HandlerResult(response="default" if cancelled else "none", data={"cancelled": cancelled})


def late_checkout(ctx: HandlerContext) -> HandlerResult:
    """Move checkout to the requested time (the checkout_cutoff rule caps it at 12:00)."""
    requested = str(ctx.slots["time"])
    if requested <= str(ctx.facts["checkout_time"]):
        return HandlerResult(response="not_needed")
    ctx.state.set("checkout.time", requested)
    request = ctx.state.add_request("late_checkout", {"time": requested}, created_at=ctx.now)
    return HandlerResult(data={"request_id": request.request_id})


def book_taxi(ctx: HandlerContext) -> HandlerResult:
    """Ask the front desk to book a taxi; they confirm by phone."""
    request = ctx.state.add_request("taxi", ctx.slots, created_at=ctx.now)
    return HandlerResult(data={"request_id": request.request_id})
