"""Hotel-specific intent handlers (the rest use edgepipe's built-in handlers).

Each handler takes a HandlerContext and returns a HandlerResult; refusals come from the data
rules in rules.yaml, checked before the handler runs.
"""

from __future__ import annotations

from datetime import datetime, time

from edgepipe.actions.handlers import HandlerContext, HandlerResult
from edgepipe.nlu.timeparse import Prefer, due_at


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


def _due(ctx: HandlerContext, prefer: Prefer) -> datetime | None:
    """When the request's time slot falls: the day it said, else the next occurrence."""
    slot = ctx.intent.slots.get("time")
    if slot is None or not isinstance(slot.value, str):
        return None
    return due_at(slot.value, ctx.now, said=slot.text, prefer=prefer)


def _day(due: datetime, now: datetime) -> str:
    days = (due.date() - now.date()).days
    return "today" if days == 0 else "tomorrow" if days == 1 else due.strftime("on %A")


def wakeup_call(ctx: HandlerContext) -> HandlerResult:
    """Schedule a wake-up call at the next occurrence of the requested time."""
    due = _due(ctx, "morning")
    if due is None:
        raise ValueError(f"wake-up time {ctx.slots.get('time')!r} is not HH:MM")
    time_said = str(ctx.slots["time"])
    request = ctx.state.add_request("wakeup", {"time": time_said}, created_at=ctx.now, due_at=due)
    return HandlerResult(
        data={"request_id": request.request_id, "day": _day(due, ctx.now), "due": due.isoformat()}
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
    """Ask the front desk to book a taxi for the next occurrence of the time said (the day it
    said, if any); they confirm by phone."""
    due = _due(ctx, "daytime")
    request = ctx.state.add_request("taxi", ctx.slots, created_at=ctx.now, due_at=due)
    data: dict[str, str] = {"request_id": request.request_id}
    if due is not None:
        data |= {"day": _day(due, ctx.now), "due": due.isoformat()}
    return HandlerResult(data=data)
