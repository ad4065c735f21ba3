"""The consumer app tested two ways: pivot_respx (no server) and pivot_mock (a real socket)."""

from __future__ import annotations

from datetime import date

import httpx
import pytest
from tvguide import BASE_URL, KEY_HEADER, Slot, TvGuide, Unauthorized, best_image

# The mock's public demo key of the "full" account (fixtures/accounts.toml).
DEMO_KEY = "acf7a7c2d48e4a01098e3feabc0ecb24"
SUNDAY = date(2024, 11, 3)


@pytest.fixture
def guide(pivot_respx: object) -> TvGuide:
    """The guide on the live URL; pivot_respx answers from the fixtures, in process."""
    return TvGuide(httpx.Client(base_url=BASE_URL, headers={KEY_HEADER: DEMO_KEY}))


def test_best_image_is_the_lowest_hierarchy() -> None:
    """The broadcast's own image (1) wins over the content's (2) and the category's (4)."""
    images = [
        {"url": "content", "hierarchy": 2},
        {"url": "broadcast", "hierarchy": 1},
        {"url": "category", "hierarchy": 4},
    ]
    assert best_image(images) == "broadcast"
    assert best_image([]) is None


def test_schedule_picks_the_broadcast_image(guide: TvGuide) -> None:
    """Gladiator on TF1 on 3 November 2024 shows the broadcast's image, not the poster
    listed first."""
    slots = guide.schedule(192, SUNDAY)
    assert (
        Slot("2024-11-03T21:10:00", "Gladiator", "https://img.plurimedia.fr/broadcasts/900102.jpg")
        in slots
    )


def test_no_broadcasts_is_an_empty_schedule(guide: TvGuide) -> None:
    """A day without data is the API's empty 200, which the guide reads as no slot."""
    assert guide.schedule(192, date(2020, 1, 1)) == []


def test_unknown_content_has_no_title(guide: TvGuide) -> None:
    """An unknown id answers 200 with an empty JSON, never 404."""
    assert guide.title(999999999) is None
    assert guide.title(7488) == "Blade Runner"


def test_unknown_lang_falls_back_to_french(guide: TvGuide) -> None:
    """lang is optional, and an unknown one answers in French."""
    assert guide.title(7488, lang="xx") == guide.title(7488)


def test_wrong_key_raises(pivot_respx: object) -> None:
    """The gateway's 401 for an unknown key surfaces as Unauthorized with its message."""
    guide = TvGuide(httpx.Client(base_url=BASE_URL, headers={KEY_HEADER: "0" * 32}))
    with pytest.raises(Unauthorized, match="invalid subscription key"):
        guide.title(7488)


def test_same_answers_over_a_real_socket(pivot_mock: object) -> None:
    """Pointed at the running mock (base URL swap only), the guide gives the same schedule."""
    url = pivot_mock.url  # type: ignore[attr-defined]
    guide = TvGuide.connect(DEMO_KEY, base_url=url)
    assert any(slot.title == "Gladiator" for slot in guide.schedule(192, SUNDAY))


def test_regenerated_key_stops_working(pivot_mock: object) -> None:
    """After the account regenerates its primary key (portal, Profile), the old one gets
    the gateway's 401; the per-test reset restores it for the next test."""
    mock = pivot_mock.app.extensions["pivot"]  # type: ignore[attr-defined]
    mock.regenerate_key("full", "primary")
    guide = TvGuide.connect(DEMO_KEY, base_url=pivot_mock.url)  # type: ignore[attr-defined]
    with pytest.raises(Unauthorized):
        guide.title(7488)
