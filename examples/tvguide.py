"""A tiny consumer of the Pivot API (httpx): a channel's schedule with the right image."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

BASE_URL = "https://api.plurimedia.fr"
KEY_HEADER = "Ocp-Apim-Subscription-Key"


class Unauthorized(Exception):
    """The gateway refused the key (missing, unknown or regenerated away)."""


@dataclass(frozen=True)
class Slot:
    """One broadcast as the guide shows it."""

    start: str
    title: str
    image: str | None


def best_image(images: list[dict[str, Any]]) -> str | None:
    """The provider's rule: keep the image with the lowest hierarchy (1 broadcast, 2 content,
    3 series or season, 4 category)."""
    ranked = [image for image in images if "hierarchy" in image]
    return min(ranked, key=lambda image: image["hierarchy"])["url"] if ranked else None


class TvGuide:
    """Reads schedules and contents through any httpx client pointed at the API or the mock."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @classmethod
    def connect(cls, key: str, base_url: str = BASE_URL) -> TvGuide:
        """A guide on ``base_url`` (the live API, or the mock: http://127.0.0.1:8080)."""
        return cls(httpx.Client(base_url=base_url, headers={KEY_HEADER: key}, timeout=10))

    def _data(self, path: str, **params: str) -> Any:
        response = self.client.get(path, params=params)
        if response.status_code == 401:
            raise Unauthorized(response.json()["message"])
        response.raise_for_status()
        body = response.json()
        return body.get("data") if isinstance(body, dict) else None  # {} is "no result"

    def schedule(self, channel_id: int, day: date, lang: str | None = None) -> list[Slot]:
        """The broadcasts of one channel on one day (empty when there is none)."""
        stamp = day.strftime("%Y%m%d")
        params = {"lang": lang} if lang else {}
        data = self._data(f"/v1/api/v1/broadcasts/{channel_id}/{stamp}/{stamp}", **params)
        return [
            Slot(
                b["start"],
                (b.get("content") or {}).get("title", "?"),
                best_image(b.get("images") or []),
            )
            for b in data or []
        ]

    def title(self, content_id: int, lang: str | None = None) -> str | None:
        """A content's title, None when the API has no such content."""
        data = self._data(f"/v1/api/v1/contents/{content_id}", **({"lang": lang} if lang else {}))
        return data.get("title") if data else None
