"""A generated corpus for the scale benchmark (issue 17): a month of recordings, or more.

``generate(target, count, large)`` writes ``count`` fixtures under ``target``: ``large`` of
them are ``listBroadcasts`` schedules (one channel and day each, a day of broadcasts with their
contents embedded: 100 KB or more each), the rest ``getContent`` answers (about 2 KB, copied
from ``fixtures/getContent/7488.json`` with new ids), plus the bundled accounts, scenarios and
timelines. Every file is valid against the contract, so the mock serves all of them.

Generating 100,000 files takes a minute and about 1 GB: the corpus is made once into a cache
folder named after its size and this file's digest (``bench/results/corpus-<count>-<digest>``
by default) and reused while a ``.complete`` marker says it was written whole.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
CONTENT = FIXTURES / "getContent" / "7488.json"
SCHEDULE = FIXTURES / "listBroadcasts" / "34-20241105.json"
LARGE_MIN_BYTES = 100 * 1024
_MARKER = ".complete"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text("utf-8"))
    return data


def _schedule(template: dict[str, Any], channel: int, day: str) -> dict[str, Any]:
    """One channel's day: broadcasts copied from the template's, renumbered, until the file
    holds at least LARGE_MIN_BYTES."""
    data = copy.deepcopy(template)
    items = template["response"]["body"]["data"]
    out: list[dict[str, Any]] = []
    size = 0
    n = 0
    while size < LARGE_MIN_BYTES + 4096:
        item = copy.deepcopy(items[n % len(items)])
        item["id"] = 10_000_000 + channel * 1000 + n
        item["channelId"] = channel
        hour, minute = divmod(n * 25, 60)
        item["start"] = f"{day[:4]}-{day[4:6]}-{day[6:]}T{hour % 24:02d}:{minute:02d}:00"
        out.append(item)
        size += len(json.dumps(item, ensure_ascii=False))
        n += 1
    data["request"]["path"] = f"/v1/api/v1/broadcasts/{channel}/{day}/{day}"
    data["response"]["body"]["data"] = out
    return data


def _days(count: int) -> list[str]:
    days = []
    for month in range(1, 13):
        for day in range(1, 29):
            days.append(f"2024{month:02d}{day:02d}")
    return days[:count]


def generate(target: Path, count: int, large: int) -> Path:
    """Write the corpus into ``target`` (emptied first)."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for other in FIXTURES.iterdir():  # accounts, scenarios: the bundled ones
        if other.is_file():
            shutil.copy2(other, target / other.name)
    if (FIXTURES / "timelines").is_dir():
        shutil.copytree(FIXTURES / "timelines", target / "timelines")
    content = _load(CONTENT)
    folder = target / "getContent"
    folder.mkdir()
    small = count - large
    for i in range(small):
        content_id = 7488 if i == 0 else 1_000_000 + i
        data = copy.deepcopy(content)
        data["request"]["path"] = f"/v1/api/v1/contents/{content_id}"
        data["response"]["body"]["data"]["id"] = content_id
        (folder / f"{content_id}.json").write_text(json.dumps(data, ensure_ascii=False), "utf-8")
    if large:
        template = _load(SCHEDULE)
        schedules = target / "listBroadcasts"
        schedules.mkdir()
        per_day = max(1, -(-large // 336))
        days = _days(max(1, -(-large // per_day)))
        written = 0
        for day in days:
            for channel in range(1000, 1000 + per_day):
                if written == large:
                    break
                data = _schedule(template, channel, day)
                text = json.dumps(data, ensure_ascii=False)
                (schedules / f"{channel}-{day}.json").write_text(text, "utf-8")
                written += 1
    (target / _MARKER).write_text(f"{count} {large}\n", "utf-8")
    return target


def cached(count: int, large: int, cache: Path) -> Path:
    """The corpus of ``count`` fixtures (``large`` of them 100 KB or more) under ``cache``,
    generated once."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]
    target = cache / f"corpus-{count}-{large}-{digest}"
    marker = target / _MARKER
    if marker.is_file() and marker.read_text("utf-8") == f"{count} {large}\n":
        return target
    return generate(target, count, large)
