"""Tests of the fixture corpus itself: coverage, contract, provenance and cross-references."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from collections.abc import Iterator
from functools import cache
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from pivotkit.check import check_directory
from pivotkit.contract import load_contract
from pivotkit.fixtures import Exchange, FixtureSet

from .conftest import FIXTURES, ROOT, SCHEMAS
from .helpers import KEY_HEADER, path_of

DEFAULT_LANG = load_contract(SCHEMAS).conventions.default_lang

PROVIDER_HEADERS = {
    "cache-control": "no-cache",
    "content-encoding": "gzip",
    "content-type": "application/json; charset=utf-8",
    "expires": "-1",
    "pragma": "no-cache",
    "vary": "Accept-Encoding,Origin",
    "x-aspnet-version": "4.0.30319",
    "x-powered-by": "ASP.NET",
}
HTTP_DATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} [A-Z][a-z]{2} \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT$"
)
REQUEST_CONTEXT = re.compile(
    r"^appId=cid-v1:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-"
    r"[0-9a-f]{12}$"
)
LOCAL_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.(\d{1,7}))?$")
KEY_SHAPED = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z])")
GATEWAY_MESSAGES = {
    "Access denied due to missing subscription key. Make sure to include subscription key when "
    "making requests to an API.",
    "Access denied due to invalid subscription key. Make sure to provide a valid key for an "
    "active subscription.",
    "Resource not found",
}
PUBLIC_FORMATS = {
    "fr": {"Film", "Série", "Documentaire", "Émission sportive", "Magazine"},
    "en": {"Film", "Series", "Documentary", "Sports Show", "Magazine"},
}
TNT_NUMBERS = {
    "TF1": 1,
    "France 2": 2,
    "France 3": 3,
    "Canal+": 4,
    "France 5": 5,
    "M6": 6,
    "Arte": 7,
}


# -- helpers ---------------------------------------------------------------------------------


@cache
def _corpus() -> FixtureSet:
    return FixtureSet.load(FIXTURES)


def _lang(ex: Exchange) -> str:
    """The lang an exchange answers (the contract's default when its request asked none)."""
    return _corpus().lang_of(ex)


def _ok(operation_id: str, lang: str | None = None) -> list[Exchange]:
    """The 200 exchanges of an operation that carry data (not an empty result)."""
    out = []
    for ex in _corpus().for_operation(operation_id):
        body = ex.response.body
        if ex.response.status != 200 or not isinstance(body, dict) or not body.get("data"):
            continue
        if lang is None or _lang(ex) == lang:
            out.append(ex)
    return out


def _data(operation_id: str, path: str, lang: str = DEFAULT_LANG) -> Any:
    """The data of the 200 exchange recorded for a path and lang, or None."""
    ex = _corpus().match("GET", path, lang)
    if ex is None or ex.operation_id != operation_id or _lang(ex) != lang:
        return None
    body = ex.response.body
    return body.get("data") if isinstance(body, dict) else None


def _content(content_id: int, lang: str = DEFAULT_LANG) -> Any:
    return _data("getContent", path_of("getContent", id=content_id), lang)


def _categories(lang: str) -> list[dict[str, Any]]:
    (ex,) = _ok("listCategories", lang)
    data: list[dict[str, Any]] = ex.response.body["data"]
    return data


def _category_index(lang: str) -> dict[int, dict[str, Any]]:
    """Every format and genre of the categories list, by id (genres without nesting)."""
    out: dict[int, dict[str, Any]] = {}
    for fmt in _categories(lang):
        out[fmt["id"]] = {k: v for k, v in fmt.items() if k != "genres"}
        for genre in fmt.get("genres", []):
            out[genre["id"]] = genre
    return out


def _walk(node: Any, pointer: str = "") -> Iterator[tuple[str, Any]]:
    yield pointer, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{pointer}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{pointer}/{i}")


def _resolve(document: Any, pointer: str) -> Any:
    node = document
    for part in pointer.split("/")[1:] if pointer else []:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def _contains(actual: Any, example: Any) -> bool:
    """Whether ``actual`` holds ``example``: objects may be abridged, anything else is equal."""
    if isinstance(example, dict):
        return isinstance(actual, dict) and all(
            k in actual and _contains(actual[k], v) for k, v in example.items()
        )
    return bool(actual == example) and type(actual) is type(example)


def _all_broadcasts() -> list[tuple[Exchange, dict[str, Any]]]:
    return [(ex, item) for ex in _ok("listBroadcasts") for item in ex.response.body["data"]]


def _ids(ex: Exchange) -> str:
    return f"{ex.operation_id}-{ex.name}"


# -- coverage and the contract ----------------------------------------------------------------


def test_every_operation_of_the_contract_has_a_200_with_data() -> None:
    """Each of the 13 operations of openapi.yaml has at least one 200 carrying data."""
    operations = set(load_contract().operations)
    assert len(operations) == 13
    missing = {op for op in operations if not _ok(op)}
    assert not missing, f"operations without a 200 fixture carrying data: {sorted(missing)}"


def test_corpus_is_large_enough() -> None:
    """The corpus holds at least 60 files, and at least 50 exchanges that answer 200."""
    assert len(_corpus()) >= 60
    assert sum(ex.response.status == 200 for ex in _corpus()) >= 50


def test_every_fixture_passes_check() -> None:
    """`pivotkit check` passes on every file: format, path, status and body against the
    contract; and on scenarios.json and its timelines' fixtures."""
    results = check_directory(load_contract(), FIXTURES)
    failures = [line for r in results if not r.ok for line in r.lines()]
    timeline_files = list((FIXTURES / "timelines").rglob("*.json"))
    assert len(results) == len(_corpus()) + 1 + len(timeline_files)  # + scenarios.json
    assert not failures, "\n".join(failures)


def test_no_two_fixtures_answer_the_same_request() -> None:
    """(method, path, lang) is unique, so no fixture silently shadows another in the mock."""
    keys = Counter(_corpus().key(ex) for ex in _corpus())
    assert not [k for k, n in keys.items() if n > 1]


def test_an_empty_200_exists_for_every_operation_that_takes_an_id_or_a_period() -> None:
    """Every operation with path parameters has an empty-200 fixture, and all shapes occur."""
    contract = load_contract()
    with_params = {op.operation_id for op in contract.operations.values() if op.path_parameters}
    assert with_params == {
        "getContent",
        "getChannelCategories",
        "listUpdates",
        "listBroadcasts",
        "listCollections",
        "getPerson",
        "getPersonBiography",
        "getPersonImage",
        "getPersonAwards",
    }
    empty = contract.resolve(contract.empty_result_uri)
    validator = Draft202012Validator(empty, registry=contract.registry)
    shapes: set[str] = set()
    for op in with_params:
        bodies = [
            ex.response.body
            for ex in _corpus().for_operation(op)
            if ex.response.status == 200 and validator.is_valid(ex.response.body)
        ]
        assert bodies, f"{op}: no empty-200 fixture"
        for body in bodies:
            shapes.add("{}" if body == {} else json.dumps(body["data"]))
    assert shapes >= {"{}", "null", "[]"}


# -- provenance, headers and secrets ----------------------------------------------------------


@pytest.mark.parametrize("ex", _corpus().exchanges, ids=_ids)
def test_meta_says_where_each_fixture_comes_from(ex: Exchange) -> None:
    """meta: the full account, a known source, notes, and pointers that resolve in the body."""
    assert ex.meta["account"] == "full"
    assert ex.source in {"doc", "synthetic"}
    assert ex.meta.get("notes", "").strip()
    for kind in ("synthetic", "assumed"):
        for pointer in ex.meta.get(kind, []):
            _resolve(ex.response.body, pointer)  # raises if the pointer names nothing


@pytest.mark.parametrize(
    "ex", [ex for ex in _corpus().exchanges if ex.response.status == 200], ids=_ids
)
def test_every_200_carries_the_provider_headers(ex: Exchange) -> None:
    """A 200 has exactly the provider's header set; content-length only in the documented 7488."""
    headers = dict(ex.response.headers)
    if ex.source == "doc":
        assert headers.pop("content-length") == "2006"
    assert set(headers) == set(PROVIDER_HEADERS) | {"date", "request-context"}
    assert {k: headers[k] for k in PROVIDER_HEADERS} == PROVIDER_HEADERS
    assert HTTP_DATE.match(headers["date"])
    assert REQUEST_CONTEXT.match(headers["request-context"])


def test_gateway_errors_carry_the_exact_messages() -> None:
    """Gateway errors exist (401, 403, 429) with APIM's exact texts and Retry-After when due."""
    errors = [ex for ex in _corpus() if ex.response.status in (401, 403, 404, 429)]
    assert {ex.response.status for ex in errors} >= {401, 403, 429}
    for ex in errors:
        body = ex.response.body
        assert set(body) == {"statusCode", "message"} and body["statusCode"] == ex.response.status
        if ex.response.status in (401, 404):
            assert body["message"] in GATEWAY_MESSAGES
        if ex.response.status in (403, 429):
            assert int(ex.response.headers["retry-after"]) > 0
    missing_key = [ex for ex in errors if "missing subscription key" in ex.response.body["message"]]
    assert missing_key and all(KEY_HEADER not in ex.request.headers for ex in missing_key)


def test_no_fixture_holds_a_key() -> None:
    """No request stores a key (header or query), and no file holds a key-shaped string."""
    for ex in _corpus():
        assert "subscription-key" not in {k.lower() for k in ex.request.query}
        assert KEY_HEADER.lower() not in {k.lower() for k in ex.request.headers}
    for path in FIXTURES.glob("*/*.json"):
        assert not KEY_SHAPED.search(path.read_text("utf-8")), path


def test_documented_sample_is_intact() -> None:
    """getContent/7488 keeps the provider's documented facts, headers and source."""
    ex = _corpus().get("GET", path_of("getContent", id=7488))
    assert ex.source == "doc" and ex.name == "7488"
    data = ex.response.body["data"]
    assert {k: data[k] for k in ("id", "title", "typographicTitle", "lastUpdate", "isFre")} == {
        "id": 7488,
        "title": "Blade Runner",
        "typographicTitle": "Blade Runner",
        "lastUpdate": "2024-09-27T07:48:30.677",
        "isFre": True,
    }
    assert ex.response.headers["date"] == "Tue, 05 Nov 2024 11:25:51 GMT"
    assert (
        ex.response.headers["request-context"]
        == "appId=cid-v1:573995c4-a10b-48e5-b5b5-78ad0699dd05"
    )


def test_last_update_values_look_like_json_net() -> None:
    """Every lastUpdate: no timezone, trailing zeros trimmed, and 0 to 7 digits all occur."""
    digits: set[int] = set()
    for ex in _corpus():
        for pointer, value in _walk(ex.response.body):
            if pointer.endswith("/lastUpdate"):
                m = LOCAL_DATE_TIME.match(value)
                assert m, f"{ex.file} {pointer}: {value!r}"
                fraction = m.group(1) or ""
                assert not fraction.endswith("0"), f"{ex.file} {pointer}: {value!r}"
                digits.add(len(fraction))
    assert digits == set(range(8))


def test_generator_reproduces_the_synthetic_files() -> None:
    """tools/make_fixtures.py writes exactly the synthetic files (edit the script, not the JSON)."""
    spec = importlib.util.spec_from_file_location(
        "make_fixtures", ROOT / "tools" / "make_fixtures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built = module.build()
    on_disk = {(ex.operation_id, ex.name) for ex in _corpus() if ex.source == "synthetic"}
    hint = "edit tools/make_fixtures.py, then run it"
    assert set(built) == on_disk, f"{hint}: {sorted(set(built) ^ on_disk)}"
    for (op, name), data in built.items():
        text = (FIXTURES / op / f"{name}.json").read_text("utf-8")
        assert text == json.dumps(data, indent=2, ensure_ascii=False) + "\n", (
            f"{op}/{name} differs from the generator's output; {hint}"
        )


# -- categories, channels, days ------------------------------------------------------------


def test_categories_have_16_formats_with_the_same_ids_in_fr_and_en() -> None:
    """Both languages list 16 formats with genres, the same ids, the public names among them."""
    shape: dict[str, list[tuple[int, list[int]]]] = {}
    for lang in ("fr", "en"):
        formats = _categories(lang)
        assert len(formats) == 16
        assert all(f["kind"] == "format" and f["genres"] for f in formats)
        for f in formats:
            assert all(g["kind"] == "genre" and g["formatId"] == f["id"] for g in f["genres"])
        shape[lang] = [(f["id"], [g["id"] for g in f["genres"]]) for f in formats]
        assert PUBLIC_FORMATS[lang] <= {f["name"] for f in formats}
    assert shape["fr"] == shape["en"]
    assert len(_category_index("fr")) == len({i for f, gs in shape["fr"] for i in [f, *gs]})


def test_the_eleven_assumed_formats_are_marked_as_assumed() -> None:
    """Every format beyond the five public ones is named by a pointer in meta.assumed."""
    public = PUBLIC_FORMATS["en"]
    en_names = {f["id"]: f["name"] for f in _categories("en")}
    for ex in _ok("listCategories"):
        assumed = set(ex.meta["assumed"])
        for i, fmt in enumerate(ex.response.body["data"]):
            if en_names[fmt["id"]] not in public:
                assert f"/data/{i}" in assumed, f"{ex.file}: /data/{i} ({fmt['name']})"
        assert "assum" in ex.meta["notes"].lower()
        assert sum(en_names[f["id"]] not in public for f in ex.response.body["data"]) == 11


def test_contents_use_categories_of_the_list() -> None:
    """Every content's format and genres exist in the categories list of its language."""
    for ex in _ok("getContent"):
        index = _category_index(_lang(ex))
        data = ex.response.body["data"]
        assert index[data["formatId"]]["name"] == data["format"], ex.file
        for genre in data.get("genres", []):
            assert index[genre["id"]] == genre, ex.file
            assert genre["formatId"] == data["formatId"], ex.file


def test_channel_categories_come_from_the_categories_list() -> None:
    """Channel categories are entries of the list, and match the channel's categoryIds."""
    (channels_fr,) = _ok("listChannels", "fr")
    category_ids = {c["id"]: c["categoryIds"] for c in channels_fr.response.body["data"]}
    exchanges = _ok("getChannelCategories")
    assert exchanges
    for ex in exchanges:
        index = _category_index(_lang(ex))
        channel_id = int(ex.request.path.split("/")[-2])
        items = ex.response.body["data"]
        for item in items:
            assert {k: v for k, v in item.items() if k != "genres"} == index[item["id"]]
        assert [c["id"] for c in items] == category_ids[channel_id]
    for ids in category_ids.values():
        assert set(ids) <= set(_category_index("fr"))


def test_channels_and_provider_numbers() -> None:
    """The real channels with their TNT numbers; provider entries and days name known channels."""
    channels = {c["id"]: c["name"] for c in _ok("listChannels", "fr")[0].response.body["data"]}
    assert set(TNT_NUMBERS) <= set(channels.values())
    (numbers,) = _ok("listProviderChannels")
    items = numbers.response.body["data"]
    assert {i["channelId"] for i in items} <= set(channels)
    tnt = {
        channels[i["channelId"]]: i["channelNumber"] for i in items if i["providerName"] == "TNT"
    }
    assert {k: tnt[k] for k in TNT_NUMBERS} == TNT_NUMBERS
    assert len({i["providerName"] for i in items}) > 1
    (days,) = _ok("listDays")
    for day in days.response.body["data"]:
        assert set(day["channelIds"]) <= set(channels)
    en = {c["id"] for c in _ok("listChannels", "en")[0].response.body["data"]}
    assert en == set(channels)


# -- contents, series, broadcasts, collections -------------------------------------------------


def test_contents_cover_the_kinds_and_both_languages() -> None:
    """Films, a series (season, episodes), a documentary, a sports show, a magazine; fr and en."""
    formats = Counter(ex.response.body["data"]["formatId"] for ex in _ok("getContent", "fr"))
    names = {f["id"]: f["name"] for f in _categories("en")}
    kinds = {names[i] for i in formats}
    assert {"Film", "Series", "Documentary", "Sports Show", "Magazine"} <= kinds
    assert formats[1] >= 4
    en = _ok("getContent", "en")
    assert len(en) >= 3
    for ex in en:
        fr = _content(ex.response.body["data"]["id"])
        assert fr is not None, ex.file
        data = ex.response.body["data"]
        assert {k: data[k] for k in ("productionYear", "lastUpdate", "isFre")} == {
            k: fr[k] for k in ("productionYear", "lastUpdate", "isFre")
        }
        assert [c["personId"] for c in data.get("credits", [])] == [
            c["personId"] for c in fr.get("credits", [])
        ]
        assert data["synopsis"] != fr["synopsis"], f"{ex.file}: the synopsis is not English"


def test_series_season_and_episodes_point_at_each_other() -> None:
    """Seasons name their series; episodes their season and series, with numbers."""
    seasons = episodes = 0
    for ex in _ok("getContent"):
        data = ex.response.body["data"]
        if "episodeNumber" in data:
            episodes += 1
            season = _content(data["seasonId"])
            assert season["seriesId"] == data["seriesId"]
            assert season["seasonNumber"] == data["seasonNumber"]
            assert _content(data["seriesId"])["formatId"] == data["formatId"]
        elif "seasonNumber" in data:
            seasons += 1
            assert "seasonId" not in data and _content(data["seriesId"]) is not None
    assert seasons >= 1 and episodes >= 2


def test_broadcasts_resolve_to_their_contents() -> None:
    """Every broadcast's contentId has a getContent fixture equal to the embedded content."""
    broadcasts = _all_broadcasts()
    assert len(broadcasts) >= 5
    for ex, item in broadcasts:
        channel, start, end = ex.request.path.split("/")[-3:]
        assert item["channelId"] == int(channel)
        assert start <= item["start"][:10].replace("-", "") <= end
        content = _content(item["contentId"], _lang(ex))
        assert content is not None, f"{ex.file}: no getContent fixture for {item['contentId']}"
        assert item["content"]["id"] == item["contentId"]
        assert item["content"]["title"] == content["title"]
        assert item["content"] == content, f"{ex.file}: content {item['contentId']} differs"


def test_broadcast_days_are_listed() -> None:
    """Every day a broadcast fixture covers is in listDays for its channel."""
    (days,) = _ok("listDays")
    listed = {(c, d["day"]) for d in days.response.body["data"] for c in d["channelIds"]}
    for _, item in _all_broadcasts():
        assert (item["channelId"], item["start"][:10].replace("-", "")) in listed


def test_broadcast_images_cover_every_hierarchy() -> None:
    """Hierarchies 1-4 occur, in one channel/day too; the lowest varies; some list it not first."""
    seen: set[int] = set()
    lowest: set[int] = set()
    unsorted = without = 0
    for _, item in _all_broadcasts():
        images = item.get("images", [])
        if not images:
            without += 1
            continue
        hierarchies = [i["hierarchy"] for i in images]
        seen |= set(hierarchies)
        lowest.add(min(hierarchies))
        unsorted += hierarchies[0] != min(hierarchies)
        assert len(images) >= 2 or hierarchies == [4]
    assert seen == {1, 2, 3, 4}
    assert lowest == {1, 2, 3, 4}
    one_day = [
        ex
        for ex in _ok("listBroadcasts")
        if {i["hierarchy"] for b in ex.response.body["data"] for i in b.get("images", [])}
        == {1, 2, 3, 4}
    ]
    assert one_day, "no single channel/day covers hierarchies 1 to 4"
    assert unsorted >= 1 and without >= 1


def test_collections_point_at_contents() -> None:
    """Collection links name getContent fixtures: the episode, its master and its season."""
    links = [i for ex in _ok("listCollections") for i in ex.response.body["data"]]
    assert links
    for link in links:
        episode = _content(link["contentId"])
        assert episode is not None
        assert _content(link["masterContentId"]) is not None
        assert _content(link["seasonContentId"]) is not None
        assert episode["seriesId"] == link["masterContentId"]
        assert episode["seasonId"] == link["seasonContentId"]


def test_updates_include_an_earlier_last_update() -> None:
    """One answer returns a lastUpdate earlier than `since` (programme data changed), noted."""

    def since(ex: Exchange) -> str:
        s = ex.request.path.rsplit("/", 1)[1]
        return f"{s[:4]}-{s[4:6]}-{s[6:8]}T{s[8:10]}:{s[10:12]}:{s[12:]}"

    updates = _ok("listUpdates")
    earlier = [
        ex for ex in updates if any(i["lastUpdate"] < since(ex) for i in ex.response.body["data"])
    ]
    normal = [
        ex for ex in updates if all(i["lastUpdate"] > since(ex) for i in ex.response.body["data"])
    ]
    assert earlier and normal
    assert all("earlier" in ex.meta["notes"].lower() for ex in earlier)


# -- persons ------------------------------------------------------------------------------------


def test_credited_people_agree_with_their_person_fixtures() -> None:
    """A personId has one name everywhere, and that of its getPerson fixture when there is one."""
    names: dict[int, set[str]] = {}
    for ex in _ok("getContent"):
        for credit in ex.response.body["data"].get("credits", []):
            names.setdefault(credit["personId"], set()).add(credit["name"])
    assert all(len(n) == 1 for n in names.values()), names
    persons = _ok("getPerson")
    assert len(persons) >= 5
    for ex in persons:
        person = ex.response.body["data"]
        assert person["id"] in names, f"{ex.file}: credited in no content"
        assert names[person["id"]] == {person["fullName"]}
    for pid in (1001, 1002, 1003, 1004):
        assert names[pid] == {_content(7488)["credits"][pid - 1001]["name"]}


def test_person_sub_resources_belong_to_known_persons() -> None:
    """Biographies, images and awards exist for several people who have a getPerson fixture."""
    known = {ex.response.body["data"]["id"] for ex in _ok("getPerson")}
    for op in ("getPersonBiography", "getPersonImage", "getPersonAwards"):
        exchanges = _ok(op)
        assert len(exchanges) >= 3, op
        for ex in exchanges:
            assert int(ex.request.path.split("/")[-2]) in known, ex.file
    for ex in _ok("getPersonBiography"):
        data = ex.response.body["data"]
        assert data["personId"] == int(ex.request.path.split("/")[-2])
        assert data["lang"] == _lang(ex)


def test_awards_name_their_contents() -> None:
    """An award's contentId names a getContent fixture with the same title, in its language."""
    linked = 0
    for ex in _ok("getPersonAwards"):
        for award in ex.response.body["data"]:
            assert award["result"] in {"won", "nominated"}
            if "contentId" in award:
                content = _content(award["contentId"], _lang(ex))
                assert content is not None and content["title"] == award["contentTitle"]
                linked += 1
    assert linked >= 3


# -- the examples of the schemas -------------------------------------------------------------


def _schema_examples() -> list[tuple[str, str, Any]]:
    """(schema URI, pointer of the subschema, example) for every `examples` keyword."""
    out = []
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text("utf-8"))
        for pointer, node in _walk(schema):
            if (
                isinstance(node, dict)
                and isinstance(node.get("examples"), list)
                and not pointer.endswith("/properties")
            ):
                uri = load_contract(SCHEMAS).base_uri + path.name
                out.extend((uri, pointer, ex) for ex in node["examples"])
    return out


@pytest.mark.parametrize(
    ("schema_id", "pointer", "example"),
    _schema_examples(),
    ids=lambda v: v.rsplit("/", 1)[-1] if isinstance(v, str) else "",
)
def test_schema_examples_validate_and_come_from_the_corpus(
    schema_id: str, pointer: str, example: Any
) -> None:
    """Each schema's examples validate against their own (sub)schema and occur in a fixture."""
    validator = Draft202012Validator(
        {"$ref": f"{schema_id}#{pointer}"}, registry=load_contract().registry
    )
    errors = [e.message for e in validator.iter_errors(example)]
    assert not errors
    bodies = [ex.response.body for ex in _corpus()]
    assert any(_contains(value, example) for body in bodies for _, value in _walk(body)), (
        f"{schema_id}#{pointer}: example found in no fixture body"
    )


def test_every_entity_schema_has_examples() -> None:
    """Every schema file with a title (entity) carries top-level examples."""
    for path in sorted(SCHEMAS.glob("*.json")):
        schema = json.loads(path.read_text("utf-8"))
        if path.name != "common.json":
            assert schema.get("examples"), path.name
