"""The incremental importer driven through the bundled timeline (fixtures/scenarios.json):
a schedule, then a removed, a moved and an edited broadcast, then a content-only change.

Run in process (pivot_respx) and over a real socket (pivot_mock); the same assertions catch
an importer that forgets to delete what a re-imported day no longer lists.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest
from importer import SINCE_FORMAT, Importer

BASE_URL = "https://api.plurimedia.fr"
KEY_HEADER = "Ocp-Apim-Subscription-Key"
DEMO_KEY = "acf7a7c2d48e4a01098e3feabc0ecb24"  # the mock's public demo key of "full"
TIMELINE = "canal-plus-evening"
CANAL_PLUS, DAY = 34, "20241112"


@pytest.fixture(params=["in-process", "socket"])
def mock(request: pytest.FixtureRequest) -> Any:
    """pivot_respx (no server) or pivot_mock (a loopback server): both play the timeline."""
    return request.getfixturevalue("pivot_respx" if request.param == "in-process" else "pivot_mock")


@pytest.fixture
def importer(mock: Any, importer_class: type[Importer]) -> Importer:
    """The importer, its clock on the timeline's time (the current step's date-time)."""
    base_url = getattr(mock, "url", BASE_URL)
    client = httpx.Client(base_url=base_url, headers={KEY_HEADER: DEMO_KEY})
    timeline = mock.timeline(TIMELINE)
    return importer_class(client, clock=lambda: datetime.strptime(timeline.at, SINCE_FORMAT))


def test_the_importer_follows_the_timeline(mock: Any, importer: Importer) -> None:
    """Each sync re-imports the day listUpdates reports, drops the broadcast the day no longer
    lists, moves the moved one, and reads again the contents of a content-only change."""
    timeline = mock.timeline(TIMELINE)
    timeline.advance()  # step 1: the schedule is published
    importer.import_day(CANAL_PLUS, DAY)
    assert [b.id for b in importer.store.day(CANAL_PLUS, DAY)] == [901201, 901202, 901203]

    timeline.advance()  # step 2: 901203 removed, 901202 moved, content 50311 edited
    assert importer.sync() == [(CANAL_PLUS, DAY, "broadcasts")]
    kept = {b.id: b for b in importer.store.day(CANAL_PLUS, DAY)}
    assert 901203 not in kept, "La Haine (901203) was removed from the day: delete it"
    assert kept[901202].start == "2024-11-12T22:15:00"
    assert "pas même à ceux qui l'ont formé" in (importer.store.contents[50311].synopsis or "")
    mock.assert_called("listUpdates", times=1, params={"since": "20241111180000"})

    timeline.advance()  # step 3: only content 50312's programme data changed
    assert importer.sync() == [(CANAL_PLUS, DAY, "contents")]
    assert importer.store.contents[50312].short_synopsis == (
        "Malotru reprend ses fonctions au Bureau des légendes, sous une nouvelle couverture."
    )
    mock.assert_called("getContent", params={"id": 50312})
    mock.assert_called("listBroadcasts", times=2)  # a content-only change is not a re-import

    assert importer.sync() == []  # nothing since the last poll: the empty-200
