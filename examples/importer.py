"""A small incremental importer of the Pivot API (httpx), following the provider's workflow.

A first import reads the broadcasts of a channel/day. Each sync then polls the updates since
the last poll and, for every channel/day returned, re-imports the whole day: deletes are never
reported, so a broadcast the day no longer lists is gone. A returned ``lastUpdate`` earlier
than ``since`` means the broadcasts did not change but programme data did: the contents of that
day are read again instead.

``ForgetfulImporter`` is the same importer with a planted bug (it never deletes); the example
tests catch it (``examples/test_importer.py``, checked in ``tests/test_timelines.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

SINCE_FORMAT = "%Y%m%d%H%M%S"  # the updates operation's date-time [doc]


@dataclass
class Broadcast:
    """One broadcast as the importer stores it."""

    id: int
    channel_id: int
    day: str
    start: str
    end: str
    content_id: int


@dataclass
class Content:
    """The programme data the importer keeps of a content."""

    id: int
    title: str
    short_synopsis: str | None
    synopsis: str | None


@dataclass
class Store:
    """The importer's database: broadcasts and contents by id."""

    broadcasts: dict[int, Broadcast] = field(default_factory=dict)
    contents: dict[int, Content] = field(default_factory=dict)

    def day(self, channel_id: int, day: str) -> list[Broadcast]:
        """The stored broadcasts of one channel/day, by start time."""
        found = [b for b in self.broadcasts.values() if (b.channel_id, b.day) == (channel_id, day)]
        return sorted(found, key=lambda b: b.start)


def _local(stamp: str) -> datetime:
    """A backend date-time (no zone, up to 7 fraction digits) as a datetime."""
    head, _, fraction = stamp.partition(".")
    return datetime.fromisoformat(head + (f".{fraction[:6]}" if fraction else ""))


def _content(data: dict[str, Any]) -> Content:
    return Content(data["id"], data["title"], data.get("shortSynopsis"), data.get("synopsis"))


class Importer:
    """Imports channel/days into a :class:`Store` and keeps them up to date.

    ``clock`` gives the current time in the API's time (local, no zone): the next poll asks
    for what changed since the previous one.
    """

    def __init__(self, client: httpx.Client, clock: Callable[[], datetime]) -> None:
        self.client = client
        self.clock = clock
        self.store = Store()
        self.last_poll: datetime | None = None

    def _data(self, path: str) -> Any:
        response = self.client.get(path)
        response.raise_for_status()
        body = response.json()
        return body.get("data") if isinstance(body, dict) else None  # {} is "no result"

    def import_day(self, channel_id: int, day: str) -> None:
        """Read one channel/day in full and replace what the store holds of it."""
        if self.last_poll is None:
            self.last_poll = self.clock()
        data = self._data(f"/v1/api/v1/broadcasts/{channel_id}/{day}/{day}") or []
        fresh = [
            Broadcast(b["id"], channel_id, day, b["start"], b["end"], b["contentId"]) for b in data
        ]
        for b in data:
            if b.get("content"):
                content = _content(b["content"])
                self.store.contents[content.id] = content
        self.replace_day(channel_id, day, fresh)

    def replace_day(self, channel_id: int, day: str, fresh: list[Broadcast]) -> None:
        """The day as the API lists it now: what it no longer lists is deleted."""
        for old in self.store.day(channel_id, day):
            del self.store.broadcasts[old.id]
        for broadcast in fresh:
            self.store.broadcasts[broadcast.id] = broadcast

    def refresh_contents(self, channel_id: int, day: str) -> None:
        """Read again the contents of one channel/day (its broadcasts did not change)."""
        for broadcast in self.store.day(channel_id, day):
            data = self._data(f"/v1/api/v1/contents/{broadcast.content_id}")
            if data:
                self.store.contents[broadcast.content_id] = _content(data)

    def sync(self) -> list[tuple[int, str, str]]:
        """Poll the updates since the last poll and apply them; returns what was done, as
        (channel, day, "broadcasts" or "contents")."""
        since = self.last_poll or self.clock()
        now = self.clock()
        done = []
        for item in self._data(f"/v1/api/v1/updates/{since.strftime(SINCE_FORMAT)}") or []:
            channel_id, day = item["channelId"], item["day"]
            if _local(item["lastUpdate"]) < since:
                self.refresh_contents(channel_id, day)
                done.append((channel_id, day, "contents"))
            else:
                self.import_day(channel_id, day)
                done.append((channel_id, day, "broadcasts"))
        self.last_poll = now
        return done


class ForgetfulImporter(Importer):
    """The planted bug: a re-imported day adds and updates broadcasts, but never deletes
    those the day no longer lists (deletes are never reported, so they stay forever)."""

    def replace_day(self, channel_id: int, day: str, fresh: list[Broadcast]) -> None:
        for broadcast in fresh:
            self.store.broadcasts[broadcast.id] = broadcast
