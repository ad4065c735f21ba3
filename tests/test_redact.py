"""Tests of pivotkit.redact: format-preserving redaction of exchanges."""

from __future__ import annotations

import base64
import json
import re
import secrets
import urllib.parse
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest

from pivotkit.errors import ConfigError
from pivotkit.fixtures import Exchange, FixtureSet, Request, Response
from pivotkit.redact import (
    FRAGMENT,
    KEY_PLACEHOLDER,
    Redactor,
    is_placeholder,
    mask,
    request_context_placeholder,
)
from pivotkit.redact import parse_redact_field as parse_field
from tests.helpers import KEY_HEADER, key_headers

REQUEST_CONTEXT_PLACEHOLDER = request_context_placeholder()

KEY = secrets.token_hex(16)


def _exchange(
    body: Any,
    req_headers: dict[str, str] | None = None,
    resp_headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    path: str = "/v1/api/v1/contents/1",
) -> Exchange:
    return Exchange(
        "getContent",
        "1",
        Request("GET", path, MappingProxyType(query or {}), MappingProxyType(req_headers or {})),
        Response(200, body, MappingProxyType(resp_headers or {})),
        MappingProxyType(
            {
                "operationId": "getContent",
                "source": "live",
                "recorded": "2026-01-01T00:00:00Z",
                "account": "default",
            }
        ),
    )


def test_mask_keeps_length_and_punctuation() -> None:
    """A masked value has the same length and separators; GUIDs stay GUIDs."""
    assert mask("Bearer-Tok3n.x") == "Xxxxxx-Xxx0x.x"
    guid = "573995c4-a10b-48e5-b5b5-78ad0699dd05"
    assert mask(guid) == "00000000-0000-0000-0000-000000000000"
    assert len(mask(KEY)) == 32


def test_key_header_and_query_become_placeholders() -> None:
    """The key header and the subscription-key parameter keep 32 characters, all ``x``."""
    red = Redactor.build([KEY])
    ex = red.exchange(
        _exchange({}, key_headers(KEY), query={"subscription-key": KEY, "lang": "en"})
    )
    assert ex.request.headers[KEY_HEADER] == KEY_PLACEHOLDER
    assert ex.request.query == {"subscription-key": KEY_PLACEHOLDER, "lang": "en"}
    assert is_placeholder(KEY_PLACEHOLDER)


def test_key_header_redacted_even_without_the_key_value() -> None:
    """A redactor that does not know the key still masks the key header and parameter."""
    other = secrets.token_hex(16)
    ex = Redactor().exchange(
        _exchange({}, {KEY_HEADER.lower(): other}, query={"Subscription-Key": other})
    )
    assert other not in ex.dumps()
    assert ex.request.headers[KEY_HEADER.lower()] == "x" * 32


def test_sensitive_response_headers() -> None:
    """request-context ids, cookies and authorization are masked; other headers kept."""
    red = Redactor.build([KEY])
    ex = red.exchange(
        _exchange(
            {},
            {"Authorization": "Bearer abc.DEF-123", "Cookie": "a=1234; b=secret"},
            {
                "request-context": "appId=cid-v1:573995c4-a10b-48e5-b5b5-78ad0699dd05",
                "set-cookie": (
                    "ARRAffinity=9f8e7d; Path=/; HttpOnly; Expires=Wed, 21 Oct 2026 07:28:00 GMT"
                ),
                "x-powered-by": "ASP.NET",
            },
        )
    )
    assert ex.response.headers["request-context"] == REQUEST_CONTEXT_PLACEHOLDER
    assert ex.response.headers["set-cookie"] == (
        "ARRAffinity=000000; Path=/; HttpOnly; Expires=Wed, 21 Oct 2026 07:28:00 GMT"
    )
    assert ex.request.headers["Authorization"] == "Bearer xxx.XXX-000"
    assert ex.request.headers["Cookie"] == "a=0000; b=xxxxxx"
    assert ex.response.headers["x-powered-by"] == "ASP.NET"


def test_request_context_without_guid_gets_the_placeholder() -> None:
    """An unexpected request-context shape is replaced whole, not kept."""
    assert Redactor().header("Request-Context", "appId=something") == REQUEST_CONTEXT_PLACEHOLDER


def test_configured_headers_and_fields() -> None:
    """--redact-header and --redact-field mask values of the same JSON type."""
    red = Redactor.build(
        headers=["X-Account"], fields=["/data/token", "data.items.*.secret", "**.pin", "data.flags"]
    )
    body = {
        "data": {
            "token": "tok-123",
            "items": [{"secret": 42, "keep": "k"}, {"secret": 1.5}],
            "deep": {"pin": True, "x": {"pin": "12"}},
            "flags": {"a": True},
            "title": "Blade Runner",
        }
    }
    ex = red.exchange(_exchange(body, resp_headers={"X-Account": "acme-42", "vary": "Origin"}))
    assert ex.response.body == {
        "data": {
            "token": "xxx-000",
            "items": [{"secret": 0, "keep": "k"}, {"secret": 0.0}],
            "deep": {"pin": False, "x": {"pin": "00"}},
            "flags": {"a": False},
            "title": "Blade Runner",
        }
    }
    assert ex.response.headers == {"X-Account": "xxxx-00", "vary": "Origin"}


def test_field_names_apply_to_query_parameters() -> None:
    """A one-segment or ``**`` field also masks a query parameter of that name."""
    red = Redactor.build(fields=["**.token"])
    ex = red.exchange(_exchange({}, query={"token": "qrs", "lang": "fr"}))
    assert ex.request.query == {"token": "xxx", "lang": "fr"}


def test_missing_field_changes_nothing() -> None:
    """A configured field that is absent leaves the body as it was."""
    body = {"version": "v1", "statusCode": 200, "data": [1, 2]}
    assert Redactor.build(fields=["/data/0/token", "nothing.here"]).body(body) == body


def test_key_scrubbed_everywhere() -> None:
    """The key's own value is replaced in paths, keys, values, headers, in any case."""
    red = Redactor.build([KEY])
    ex = red.exchange(
        _exchange(
            {"data": {"url": f"https://x/?subscription-key={KEY}", KEY: [KEY.upper()]}},
            resp_headers={"location": f"/next?k={KEY}"},
            path=f"/v1/api/v1/contents/{KEY}",
        )
    )
    text = ex.dumps()
    assert KEY not in text and KEY.upper() not in text
    assert ex.response.body["data"]["url"] == "https://x/?subscription-key=" + "x" * 32


def test_redacted_exchange_is_still_a_valid_fixture() -> None:
    """Placeholders keep the fixture file valid and its match key unchanged."""
    original = _exchange(
        {"version": "v1", "statusCode": 200, "data": {"id": 1}},
        key_headers(KEY),
        {"request-context": "appId=x"},
        query={"lang": "en"},
    )
    ex = Redactor.build([KEY]).exchange(original)
    again = Exchange.from_dict(ex.to_dict(), name="1")
    index = FixtureSet([original])
    assert index.key(again) == index.key(original) == ("GET", "/v1/api/v1/contents/1", "en")


def test_bad_configuration_is_refused() -> None:
    """A short key or a malformed field spec is a ConfigError that says what to write."""
    with pytest.raises(ConfigError, match="32 hexadecimal"):
        Redactor.build(["abc"])
    for spec in ("", "/", "data..x", "a.**"):
        with pytest.raises(ConfigError, match="redact-field"):
            parse_field(spec)
    assert parse_field("/a~1b/c~0d") == ("a/b", "c~d")


def test_assert_clean_is_a_last_guard() -> None:
    """Text that still holds the key is refused."""
    red = Redactor.build([KEY])
    red.assert_clean("nothing here")
    with pytest.raises(ConfigError, match="survived"):
        red.assert_clean(f"oops {KEY}")


def test_text_replaces_with_same_length() -> None:
    """Scrubbed messages keep their shape (the placeholder is as long as the key)."""
    out = Redactor.build([KEY]).text(f"GET /x?subscription-key={KEY}&lang=fr")
    assert re.fullmatch(r"GET /x\?subscription-key=x{32}&lang=fr", out)


# -- log text: every fragment of a secret ---------------------------------------------------------


def _runs(text: str, length: int = FRAGMENT) -> set[str]:
    return {text[i : i + length] for i in range(len(text) - length + 1)}


def test_log_text_scrubs_the_head_and_tail_pytest_keeps() -> None:
    """A key shortened to its head and tail (pytest's long-string repr) loses both; a
    message around it is kept."""
    log = Redactor(secrets=(KEY,))
    shortened = f"assert '{KEY[:12]}...{KEY[-13:]}' == 'other'"
    assert log.log_text(shortened) == "assert '***...***' == 'other'"
    assert log.log_text(f"key was {KEY}!") == "key was ***!"


@pytest.mark.parametrize("start", [0, 3, 11, 24])
@pytest.mark.parametrize("length", [8, 9, 15, 31])
def test_log_text_scrubs_any_run_of_eight_or_more(start: int, length: int) -> None:
    """Any run of 8 or more consecutive characters, wherever it starts in the key."""
    run = KEY[start : start + length]  # cut at the key's end: 8 characters at least
    assert len(run) >= FRAGMENT
    assert Redactor(secrets=(KEY,)).log_text(f"<{run}>") == "<***>"


def test_log_text_leaves_seven_characters_and_other_hex_alone() -> None:
    """Seven characters of the key are not a fragment; a hex string sharing no run of 8
    with the key is left as it is."""
    log = Redactor(secrets=(KEY,))
    assert log.log_text(f"id {KEY[5:12]}") == f"id {KEY[5:12]}"
    other = "".join("0" if c != "0" else "1" for c in KEY)  # no character in common
    assert log.log_text(other) == other


@pytest.mark.parametrize("form", [str.upper, str.lower, str.title, str.swapcase])
def test_log_text_ignores_case(form: Any) -> None:
    """The key in capitals, or in any mix of cases, is scrubbed too."""
    assert Redactor(secrets=(KEY,)).log_text(f"[{form(KEY)[2:20]}]") == "[***]"


@pytest.mark.parametrize("prefix", ["", "u:", "us:", "user:", "ab", "A"])
@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
@pytest.mark.parametrize("case", [str, str.upper])
def test_log_text_scrubs_base64_at_any_offset(prefix: str, encode: Any, case: Any) -> None:
    """The key base64-encoded after 0, 1 or 2 bytes of something else (a Basic header):
    nothing of the encoded run that only the key decides is left."""
    secret = case(KEY)
    encoded = encode(f"{prefix}{secret}".encode()).decode()
    out = Redactor(secrets=(KEY,)).log_text(f"Basic {encoded}")
    assert "***" in out
    first = -(-8 * len(prefix.encode()) // 6)  # the first character only the key decides
    stable = encoded[first : len(encoded) - 4]
    assert not _runs(stable) & _runs(out)


def test_log_text_scrubs_url_encoded_and_json_escaped_forms() -> None:
    """A key of other characters is scrubbed as is, percent-encoded, form-encoded and
    JSON-escaped; each form in any case."""
    secret = 'S3cret/+ "pass"=word&2024'
    log = Redactor(secrets=(secret,))
    for form in (
        secret,
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote_plus(secret),
        json.dumps(secret)[1:-1],
        urllib.parse.quote(secret, safe="").lower(),
    ):
        out = log.log_text(f"sent {form} once")
        assert out.startswith("sent ") and out.endswith(" once") and "***" in out, out
        assert not _runs(form.lower()) & _runs(out.lower()), out


def test_log_text_merges_overlapping_runs_and_keeps_several_secrets_apart() -> None:
    """Two overlapping or touching runs are one ***; each of several secrets is scrubbed."""
    other = secrets.token_hex(16)
    log = Redactor(secrets=(KEY, other))
    assert log.log_text(KEY[:10] + KEY[4:20]) == "***"
    assert log.log_text(f"{KEY} and {other.upper()}") == "*** and ***"


def test_log_text_scrubs_a_short_secret_whole_and_nothing_without_secrets() -> None:
    """A secret under 8 characters is scrubbed whole (and not in part); without secrets
    the text is unchanged."""
    assert Redactor(secrets=("abc12",)).log_text("x abc12 abc1 y") == "x *** abc1 y"
    assert Redactor().log_text(f"key {KEY}") == f"key {KEY}"


# -- every common encoding of a key ------------------------------------------------------------


def _spellings(key: str) -> dict[str, str]:
    import base64
    import urllib.parse

    raw = key.encode()
    return {
        "literal": key,
        "upper": key.upper(),
        "base64": base64.b64encode(raw).decode(),
        "base64url": base64.urlsafe_b64encode(raw).decode().rstrip("="),
        "base64 in a blob": base64.b64encode(b"user:" + raw + b":pw").decode(),
        "base64 in a blob, shifted": base64.b64encode(b"us:" + raw + b":pw").decode(),
        "hex": raw.hex(),
        "HEX": raw.hex().upper(),
        "percent": "".join(f"%{b:02X}" for b in raw),
        "percent, lower": "".join(f"%{b:02x}" for b in raw),
        "percent, partly": key[:9] + f"%{ord(key[9]):02X}" + key[10:],
        "percent, twice": urllib.parse.quote("".join(f"%{b:02X}" for b in raw), safe=""),
        "JSON escapes": "".join(f"\\u{ord(c):04x}" for c in key),
    }


@pytest.mark.parametrize("how", sorted(_spellings("0" * 32)))
def test_every_encoding_of_the_key_is_scrubbed(how: str) -> None:
    """The redactor removes the key however an upstream echoes it; the last guard agrees."""
    key = secrets.token_hex(16)
    text = f"before {_spellings(key)[how]} after"
    redactor = Redactor.build([key])
    cleaned = redactor.text(text)
    assert _spellings(key)[how] not in cleaned
    redactor.assert_clean(cleaned)
    with pytest.raises(ConfigError, match="survived"):
        redactor.assert_clean(text)


@pytest.mark.parametrize("how", sorted(set(_spellings("0" * 32)) - {"literal", "upper"}))
def test_the_scanner_finds_encoded_keys(tmp_path: Path, how: str) -> None:
    """A key hidden in a fixture as base64, base64url, hex, percent-encoding or JSON escapes is
    a finding that says how it was spelled (and never shows it)."""
    from pivotkit.redact import scan_secrets

    key = secrets.token_hex(16)
    path = tmp_path / "fixtures" / "getContent" / "x.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"note": "' + _spellings(key)[how] + '"}', encoding="utf-8")
    findings = scan_secrets(tmp_path)
    assert len(findings) == 1 and findings[0].line == 1
    assert "a key, " in findings[0].kind and key not in str(findings[0])


def test_the_scanner_leaves_encoded_demo_keys_and_plain_text_alone(tmp_path: Path) -> None:
    """Encoded demo keys of the accounts file pass; ordinary base64 and hex (an image, a
    hash) are not keys."""
    import base64
    import hashlib

    from pivotkit.client import demo_key
    from pivotkit.redact import scan_secrets

    root = tmp_path / "fixtures"
    (root / "getContent").mkdir(parents=True)
    (root / "accounts.toml").write_text(
        'demo_keys = true\n[[accounts]]\nname = "full"\n', encoding="utf-8"
    )
    demo = demo_key("full").reveal()
    (root / "getContent" / "x.json").write_text(
        json.dumps(
            {
                "demo": base64.b64encode(demo.encode()).decode(),
                "image": base64.b64encode(bytes(range(256))).decode(),
                "sha": hashlib.sha256(b"x").hexdigest(),
                "text": base64.b64encode(b"The quick brown fox jumps over the lazy dog").decode(),
            }
        ),
        encoding="utf-8",
    )
    assert scan_secrets(tmp_path) == []


def test_log_masking_decodes_before_it_compares() -> None:
    """mask_keys: the key parameter's name and value compared after percent-decoding."""
    from pivotkit.redact import mask_keys

    key = secrets.token_hex(16)
    names = ["subscription-key"]
    pct = "".join(f"%{b:02X}" for b in key.encode())
    for line in (
        f"GET /x?subscription%2Dkey={key} HTTP/1.1",
        "GET /x?subscription%2dkey=short-value HTTP/1.1",
        f"GET /x?a={pct} HTTP/1.1",
        f"GET /v1/{key.upper()}/y HTTP/1.1",
        f"Bad request syntax ('GET /x?subscription-key={key}')",
    ):
        masked = mask_keys(line, names)
        assert key not in masked.lower() and pct not in masked and "short-value" not in masked
    assert mask_keys("GET /v1/api/v1/contents/7488?lang=fr HTTP/1.1", names).endswith(
        "7488?lang=fr HTTP/1.1"
    )
