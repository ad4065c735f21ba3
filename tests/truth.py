"""A differently-shaped upstream for the calibrate tests: "the truth" the guessed contract meets.

Built from the bundled contract and fixtures by planted changes, served by ``pivotkit serve``
from its own schemas and fixtures on a loopback socket, with its own account and key. What it
plants (each a class of difference calibrate must find):

- paths: three operations live elsewhere (one with its path parameter renamed);
- ids: every id is shifted, so the bundled fixtures' ids give empty results, and ids chain from
  answer to answer (channels -> days -> broadcasts -> contents -> persons);
- fields: one renamed (``shortSynopsis`` -> ``summary``), one new in every content
  (``ageRating``), a new envelope field (``count`` on listChannels), a nullable one
  (``birthPlace``), a type change (``channelNumber`` as a string), a new enum value (a category
  ``kind``), a required field missing in some objects (a broadcast without ``contentId``), a
  format change on a shared definition (every date-time with a UTC offset);
- wire: another ``X-AspNet-Version``, another 400 body of the backend;
- updates since recent date-times (the days calibrate tries).

It also writes the API Management export of the truth (real paths, kebab-case operation names,
summaries, no response schemas) and a HAR of a portal session.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from pivotkit.contract import load_contract
from pivotkit.documents import default_schemas_dir
from pivotkit.fixtures import read_exchange
from pivotkit.locations import default_fixtures_dir
from pivotkit.pointers import escape_pointer_segment

ID_SHIFT = 500_000
#: operationId -> (the truth's path, the truth's path parameter names in order)
MOVED = {
    "getPersonBiography": "/v1/api/v1/persons/{personId}/bio",
    "getChannelCategories": "/v1/api/v1/channels/{channelId}/genres",
    "listCollections": "/v1/api/v1/channels/{channelId}/collections/{start}/{end}",
}
ASPNET_VERSION = "4.8.4515"
MESSAGE_DETAIL = "The value is not valid for the parameter."
NEW_KIND = "subgenre"
OFFSET = "+01:00"
_LOCAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?$")
_ID_KEYS = re.compile(r"^(id|[a-z]+Id|[a-z]+Ids)$")
CONTRACT = load_contract()


@dataclass
class Truth:
    """Where the truth lives: its schemas, fixtures (with the account), export and HAR."""

    root: Path
    key: str

    @property
    def schemas(self) -> Path:
        return self.root / "schemas"

    @property
    def fixtures(self) -> Path:
        return self.root / "fixtures"

    @property
    def export(self) -> Path:
        return self.root / "apim-export.json"

    @property
    def har(self) -> Path:
        return self.root / "portal-session.har"


def shift(value: int) -> int:
    return value + ID_SHIFT if 0 < value < 10_000_000 else value


def _ids(node: Any, key: str = "") -> Any:
    if isinstance(node, dict):
        return {k: _ids(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_ids(v, key) for v in node]
    if isinstance(node, int) and not isinstance(node, bool) and _ID_KEYS.match(key):
        return shift(node)
    if isinstance(node, str) and _LOCAL.match(node):
        return node + OFFSET
    return node


def _entities(node: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _entities(value, visit)
    elif isinstance(node, list):
        for value in node:
            _entities(value, visit)


def _content(entity: dict[str, Any]) -> None:
    if "title" in entity and "id" in entity:
        if "shortSynopsis" in entity:
            entity["summary"] = entity.pop("shortSynopsis")
        rating = entity.get("csaRating")
        entity["ageRating"] = f"-{abs(rating)}" if isinstance(rating, int) else "TP"


def _body(operation_id: str, body: Any, index: int) -> Any:
    body = _ids(copy.deepcopy(body))
    _entities(body, _content)
    data = body.get("data") if isinstance(body, dict) else None
    if operation_id == "listChannels" and isinstance(data, list):
        body["count"] = len(data)
    if operation_id == "listProviderChannels" and isinstance(data, list):
        for item in data:
            item["channelNumber"] = str(item["channelNumber"])
    if operation_id == "getPerson" and isinstance(data, dict) and index % 3 == 0:
        data["birthPlace"] = None
    if operation_id == "listCategories" and isinstance(data, list) and data:
        data[-1]["kind"] = NEW_KIND
    if (
        operation_id == "listBroadcasts"
        and isinstance(data, list)
        and len(data) > 1
        and index % 2 == 0
    ):
        data[-1].pop("contentId", None)
    return body


def _path(operation_id: str, path: str) -> str:
    op = CONTRACT.operation(operation_id)
    params = op.match(path)
    if params is None:  # an error fixture on a path of its own (abc...)
        return path
    template = MOVED.get(operation_id, op.path)
    names = re.findall(r"\{([^}]+)\}", template)
    values = [
        v if not v.isdigit() or len(v) >= 8 else str(shift(int(v)))
        for v in (params[p.name] for p in op.path_parameters)
    ]
    out = template
    for name, value in zip(names, values, strict=True):
        out = out.replace("{" + name + "}", value)
    return out


# -- the truth's contract -----------------------------------------------------------------


def _edit_schemas(root: Path) -> None:
    def load(name: str) -> Any:
        return json.loads((root / name).read_text("utf-8"))

    def save(name: str, data: Any) -> None:
        (root / name).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")

    content = load("content.json")
    content["properties"]["summary"] = content["properties"].pop("shortSynopsis")
    content["properties"]["ageRating"] = {"type": "string"}
    content.pop("examples", None)
    save("content.json", content)
    person = load("person.json")
    person["properties"]["birthPlace"] = {"type": ["string", "null"]}
    save("person.json", person)
    provider = load("provider-channel.json")
    provider["properties"]["channelNumber"] = {"type": "string", "pattern": "^\\d+$"}
    provider.pop("examples", None)
    save("provider-channel.json", provider)
    common = load("common.json")
    common["$defs"]["localDateTime"]["pattern"] = (
        "^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d{1,7})?[+-]\\d\\d:\\d\\d$"
    )
    common["$defs"]["localDateTime"].pop("examples", None)
    save("common.json", common)
    category = load("category.json")
    category["properties"]["kind"]["enum"].append(NEW_KIND)
    save("category.json", category)
    broadcast = load("broadcast.json")
    broadcast["required"].remove("contentId")
    save("broadcast.json", broadcast)
    invalid = load("invalid-request.json")
    invalid["required"].append("MessageDetail")
    invalid["properties"]["MessageDetail"] = {"const": MESSAGE_DETAIL}
    invalid["examples"] = [
        {"Message": invalid["properties"]["Message"]["const"], "MessageDetail": MESSAGE_DETAIL}
    ]
    save("invalid-request.json", invalid)
    _edit_openapi(root / "openapi.yaml")
    for path in root.glob("*.json"):  # the truth's examples are its own business
        data = json.loads(path.read_text("utf-8"))
        data.pop("examples", None)
        save(path.name, data)


def _edit_openapi(path: Path) -> None:
    doc = yaml.safe_load(path.read_text("utf-8"))
    paths = doc["paths"]
    for template in list(paths):
        spec = paths[template]["get"]
        op_id = spec["operationId"]
        for status in spec.get("responses", {}).values():
            for media in (status.get("content") or {}).values():
                media.pop("examples", None)
        for param in spec.get("parameters", []):
            param.pop("examples", None)
        if op_id in MOVED:
            new = MOVED[op_id]
            old_names = re.findall(r"\{([^}]+)\}", template)
            new_names = re.findall(r"\{([^}]+)\}", new)
            for param in spec.get("parameters", []):
                if param.get("in") == "path" and param["name"] in old_names:
                    param["name"] = new_names[old_names.index(param["name"])]
            paths[new] = paths.pop(template)
    for item in paths.values():  # links of the truth name the truth's parameters
        for response in item["get"].get("responses", {}).values():
            for link in (response.get("links") or {}).values():
                if link.get("operationId") == "getPersonBiography":
                    for key in ("parameters", "x-pivot-parameters"):
                        if key in link and "id" in link[key]:
                            link[key]["personId"] = link[key].pop("id")
    for response in doc["components"]["responses"].values():
        for media in (response.get("content") or {}).values():
            media.pop("examples", None)
    doc["components"]["headers"]["X-AspNet-Version"]["schema"]["const"] = ASPNET_VERSION
    doc["components"]["headers"]["X-AspNet-Version"]["example"] = ASPNET_VERSION
    envelope = doc["components"]["schemas"]["ChannelListEnvelope"]
    envelope["properties"]["count"] = {"type": "integer", "minimum": 0}
    path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), "utf-8")


# -- the truth's fixtures ------------------------------------------------------------------


def _write_fixtures(root: Path, key: str, limits: str = "") -> None:
    source = default_fixtures_dir()
    for index, file in enumerate(sorted(source.glob("*/*.json"))):
        exchange = read_exchange(file)
        data = json.loads(file.read_text("utf-8"))
        data["request"]["path"] = _path(exchange.operation_id, exchange.request.path)
        data["response"]["body"] = _body(exchange.operation_id, exchange.response.body, index)
        headers = data["response"].get("headers") or {}
        if "x-aspnet-version" in headers:
            headers["x-aspnet-version"] = ASPNET_VERSION
        if exchange.response.status == 400:
            data["response"]["body"]["MessageDetail"] = MESSAGE_DETAIL
        target = root / file.parent.name / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")
    _recent_updates(root)
    _daily_collections(root)
    (root / "accounts.toml").write_text(
        "[[accounts]]\n"
        'name = "customer"\n'
        f'primary_key = "{key}"\n'
        f'secondary_key = "{key[::-1]}"\n'
        'operations = ["*"]\n'
        'fields = ["*"]\n' + limits,
        "utf-8",
    )


def _daily_collections(root: Path) -> None:
    """Collections for every channel and day listDays gives (the real API answers any period)."""
    folder = root / "listCollections"
    template = json.loads((folder / "34-20241104-20241110.json").read_text("utf-8"))
    days = json.loads((root / "listDays" / "all.json").read_text("utf-8"))["response"]["body"]
    for entry in days["data"]:  # the truth's ids already
        for channel in entry["channelIds"][:3]:
            data = copy.deepcopy(template)
            data["request"]["path"] = (
                MOVED["listCollections"]
                .replace("{channelId}", str(channel))
                .replace("{start}", entry["day"])
                .replace("{end}", entry["day"])
            )
            name = f"{channel}-{entry['day']}.json"
            (folder / name).write_text(json.dumps(data, indent=2) + "\n", "utf-8")


def _recent_updates(root: Path) -> None:
    """The updates since today, yesterday and a week ago (the date-times calibrate tries)."""
    folder = root / "listUpdates"
    template = json.loads((folder / "20241105060000.json").read_text("utf-8"))
    now = datetime.now(UTC)
    for back in (0, 1, 7):
        since = (now - timedelta(days=back)).strftime("%Y%m%d000000")
        data = copy.deepcopy(template)
        data["request"]["path"] = CONTRACT.operation("listUpdates").expand(since=since)
        items = data["response"]["body"]["data"]
        moment = datetime.strptime(since, "%Y%m%d%H%M%S") + timedelta(hours=1)
        for item in items[: len(items) // 2]:  # these broadcasts changed since; the rest not
            item["lastUpdate"] = moment.strftime("%Y-%m-%dT%H:%M:%S.5") + OFFSET
        (folder / f"recent-{back}.json").write_text(json.dumps(data, indent=2) + "\n", "utf-8")


# -- the provider's export and a browser session ----------------------------------------------


def _export(truth: Truth) -> dict[str, Any]:
    doc = yaml.safe_load((truth.schemas / "openapi.yaml").read_text("utf-8"))
    paths: dict[str, Any] = {}
    for template, item in doc["paths"].items():
        spec = item["get"]
        name = "get-" + "-".join(s.strip("{}").lower() for s in template.split("/")[4:])
        params = []
        for param in spec.get("parameters", []):
            if "$ref" in param:
                params.append(
                    {"name": "lang", "in": "query", "required": False, "schema": {"type": "string"}}
                )
            else:
                params.append(
                    {
                        "name": param["name"],
                        "in": param["in"],
                        "required": True,
                        "schema": {"type": "string"},
                    }
                )
        params.append(
            {
                "name": "format",
                "in": "query",
                "required": False,
                "description": "Response format.",
                "schema": {"type": "string"},
            }
        )
        paths[template.removeprefix("/v1")] = {
            "get": {
                "operationId": name,
                "summary": spec["summary"],
                "parameters": params,
                "responses": {"200": {"description": None}},
            }
        }
    return {
        "openapi": "3.0.1",
        "info": {"title": "Pivot", "version": "1.0"},
        "servers": [{"url": "https://api.plurimedia.example/v1"}],
        "paths": paths,
    }


def har_entry(
    url: str, key: str, status: int, body: Any, *, gzip_body: bool = False
) -> dict[str, Any]:
    """One HAR 1.2 entry of a GET with the key in its request headers."""
    text = json.dumps(body)
    content: dict[str, Any] = {
        "size": len(text),
        "mimeType": "application/json; charset=utf-8",
        "text": text,
    }
    if gzip_body:
        content["text"] = base64.b64encode(gzip.compress(text.encode())).decode()
        content["encoding"] = "base64"
    return {
        "startedDateTime": "2026-12-01T09:00:00.000Z",
        "request": {
            "method": "GET",
            "url": url,
            "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "Ocp-Apim-Subscription-Key", "value": key},
                {"name": "Cookie", "value": "portal=abc"},
            ],
            "queryString": [],
            "cookies": [],
            "headersSize": -1,
            "bodySize": 0,
        },
        "response": {
            "status": status,
            "statusText": "OK",
            "httpVersion": "HTTP/1.1",
            "headers": [
                {"name": "Content-Type", "value": "application/json"},
                {"name": "X-AspNet-Version", "value": ASPNET_VERSION},
            ],
            "cookies": [],
            "content": content,
            "redirectURL": "",
            "headersSize": -1,
            "bodySize": -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": 1, "receive": 0},
    }


def _har(truth: Truth, upstream: str) -> dict[str, Any]:
    entries = [har_entry(upstream + "/portal/", truth.key, 200, {"page": True})]
    for folder in ("getPersonBiography", "getContent"):
        data_files = [
            f
            for f in sorted((truth.fixtures / folder).glob("*.json"))
            if f.name[0].isdigit() and not f.name.startswith("40")
        ]
        for file in data_files[:2]:
            data = json.loads(file.read_text("utf-8"))
            entries.append(
                har_entry(
                    upstream + data["request"]["path"],
                    truth.key,
                    data["response"]["status"],
                    data["response"]["body"],
                    gzip_body=folder == "getContent",
                )
            )
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "Chromium", "version": "120"},
            "entries": entries,
        }
    }


def build(root: Path, key: str, limits: str = "") -> Truth:
    """Write the truth (schemas, fixtures with the account, export) under ``root``;
    ``limits`` are more lines of the account (``quota = {...}``, ``rate_limit = {...}``)."""
    truth = Truth(root, key)
    shutil.copytree(default_schemas_dir(), truth.schemas)
    _edit_schemas(truth.schemas)
    _write_fixtures(truth.fixtures, key, limits)
    truth.export.write_text(json.dumps(_export(truth), indent=2) + "\n", "utf-8")
    return truth


def write_har(truth: Truth, upstream: str) -> Path:
    """A HAR of a portal session against ``upstream`` (once its URL is known)."""
    truth.har.write_text(json.dumps(_har(truth, upstream), indent=2) + "\n", "utf-8")
    return truth.har


def pointer(*parts: str) -> str:
    return "".join("/" + escape_pointer_segment(p) for p in parts)
