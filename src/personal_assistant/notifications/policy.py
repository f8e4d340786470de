"""When may a notification go out? Quiet hours and daily caps (pure; ``now`` is an argument).

* Quiet hours are two wall-clock times in the user's zone, ``start`` and ``end``; the window is
  ``[start, end)`` and wraps midnight when ``start > end`` (22:00-07:00). ``start == end`` is an
  empty window. A notification due inside the window waits until it ends.
* A channel's daily cap counts the notifications delivered through it since the start of the
  user's local day. Over the cap, a notification waits for the start of the next local day
  (00:00 in the user's zone), then quiet hours apply to that instant too. Nothing is dropped:
  a capped notification is late, never lost. Sends under way count too: when they and the
  ones delivered reach the cap, the notification waits ``recheck`` (a send under way may
  fail and free its slot), then the cap is counted again.

Wall-clock times become instants through :func:`~personal_assistant.core.wallclock.resolve_local`
(a time in a DST gap is the transition instant; a time in a fold is its first occurrence), and
no timedelta is ever added to a local time: days are stepped on dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from personal_assistant.core.wallclock import resolve_local

_ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class QuietHours:
    start: time
    end: time


def quiet_until(now: datetime, zone: ZoneInfo, quiet: QuietHours | None) -> datetime | None:
    """The instant the quiet hours around ``now`` end (aware UTC), or None if ``now`` is outside.

    ``now`` must be aware. A window end that resolves to ``now`` or earlier (the repeated hour
    of a fall-back fold) counts as over.
    """
    if quiet is None or quiet.start == quiet.end:
        return None
    local = now.astimezone(zone)
    wall = local.time().replace(tzinfo=None)
    today = local.date()
    if quiet.start < quiet.end:
        if not quiet.start <= wall < quiet.end:
            return None
        end_day = today
    elif wall >= quiet.start:
        end_day = today + _ONE_DAY
    elif wall < quiet.end:
        end_day = today
    else:
        return None
    ends = resolve_local(datetime.combine(end_day, quiet.end), zone)
    return ends if ends > now else None


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The start (00:00, or the first instant after a gap) of ``now``'s local day, UTC."""
    return resolve_local(datetime.combine(now.astimezone(zone).date(), time()), zone)


def next_day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The start of the local day after ``now``'s, UTC."""
    return resolve_local(datetime.combine(now.astimezone(zone).date() + _ONE_DAY, time()), zone)


def release_at(
    now: datetime,
    zone: ZoneInfo,
    *,
    quiet: QuietHours | None = None,
    cap: int | None = None,
    sent_today: int = 0,
    sending: int = 0,
    recheck: timedelta = timedelta(minutes=1),
) -> datetime | None:
    """When a notification due at ``now`` may go out: None for now, else a later instant.

    ``sent_today``: delivered through the channel since the start of the local day;
    ``sending``: its sends under way; ``recheck`` (> 0): the wait when only these fill the cap.
    """
    if recheck <= timedelta(0):
        raise ValueError("recheck must be positive")
    at = now
    if cap is not None and sent_today >= cap:
        at = next_day_start(now, zone)
    elif cap is not None and sent_today + sending >= cap:
        at = now + recheck  # UTC arithmetic: an elapsed time, not a wall-clock one
    ends = quiet_until(at, zone, quiet)
    if ends is not None:
        at = ends
    return None if at == now else at
