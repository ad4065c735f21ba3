"""Redaction of secrets in recorded exchanges and in text (the scanner that finds key-shaped
leftovers in files is :mod:`pivotkit.scanner`)."""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache, cached_property, lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from pivotkit.client import REDACTED
from pivotkit.errors import ConfigError
from pivotkit.fixtures import Exchange, Request, Response
from pivotkit.pointers import parse_field

if TYPE_CHECKING:
    from pivotkit.conventions import Conventions

#: What a redacted subscription key becomes: 32 characters like a key, never a real one (a
#: key is lowercase hex; ``x`` is not a hex digit), and recognised by :func:`is_placeholder`.
KEY_PLACEHOLDER = "x" * 32
ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_EXAMPLE_MAX = 120
#: The longest run of a secret's characters that log text may still show: pytest and loggers
#: shorten long values to a head and a tail (``'acf7a7c2d48e...e3feabc0ecb24'``), so log text is
#: scrubbed of every run of this many characters of a secret, not only of the whole value.
FRAGMENT = 8


def _default_conventions() -> Conventions:
    from pivotkit.contract import load_contract

    return load_contract().conventions


def request_context_placeholder(conventions: Conventions | None = None) -> str:
    """What a recorded ``request-context`` becomes: the provider's format, a zero GUID."""
    return (conventions or _default_conventions()).request_context(ZERO_GUID)


_COOKIE_ATTRIBUTES = frozenset({"expires", "max-age", "domain", "path", "samesite", "priority"})
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEXISH = re.compile(r"[0-9a-fA-F:_-]+")

# A key is 32 lowercase hex characters [apim]; a longer hex run (a hash, a commit id) is not one.
KEY_SHAPED = re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{32}(?![0-9A-Za-z])")
KEY_SHAPED_ANY_CASE = re.compile(r"(?<![0-9A-Za-z])[0-9a-fA-F]{32}(?![0-9A-Za-z])")
# A run of characters a URL may spell a key with: letters, digits, percent escapes, '+'.
_URL_RUN = re.compile(r"(?:[0-9A-Za-z+_.~-]|%[0-9A-Fa-f]{2})+")
_PARAMETER = re.compile(r"(?P<name>[^\s?&=#;\"']+)=(?P<value>[^\s&#;\"']*)")


def mask_keys(text: str, names: Iterable[str] = ()) -> str:
    """``text`` (a request line, a log message) with every key it may hold masked as ``***``.

    Compared after percent-decoding, so ``subscription%2Dkey=...`` or ``%61%63...`` are caught:
    the value of a parameter whose name is one of ``names`` (the contract's key names), and
    any run of URL characters that decodes to something key-shaped (32 hex characters, in
    either case).
    """
    wanted = {n.lower() for n in names if n}

    def parameter(m: re.Match[str]) -> str:
        if wanted and unquote_plus(m.group("name")).strip().lower() in wanted:
            return f"{m.group('name')}=***"
        return m.group(0)

    def run(m: re.Match[str]) -> str:
        decoded = unquote_plus(unquote_plus(m.group(0)))
        return "***" if KEY_SHAPED_ANY_CASE.search(decoded) else m.group(0)

    masked = _PARAMETER.sub(parameter, text) if wanted and "=" in text else text
    return _URL_RUN.sub(run, masked)


@cache
def key_assignment(names: tuple[str, ...]) -> re.Pattern[str]:
    """``<key name>: value`` or ``<key name>=value``, for the contract's key names."""
    alternatives = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?i)({alternatives})[\"']?\s*[:=]\s*[\"']?([^\"'&\s,;}}]*)")


def key_names() -> tuple[str, ...]:
    conv = _default_conventions()
    return tuple(n for n in (conv.key_header, conv.key_query) if n)


def mask(value: str) -> str:
    """The format-preserving placeholder of a secret string.

    Length and punctuation are kept; a hex-looking value becomes zeros (a GUID stays a GUID),
    otherwise digits become ``0`` and letters ``x``/``X``.
    """
    if _HEXISH.fullmatch(value) and any(c.isalnum() for c in value):
        return re.sub(r"[0-9a-fA-F]", "0", value)
    return "".join(
        "0" if c.isdigit() else ("X" if c.isupper() else "x") if c.isalpha() else c for c in value
    )


def _mask_json(value: Any) -> Any:
    """A placeholder of the same JSON type: strings masked, numbers 0, booleans false."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return 0
    if isinstance(value, float):
        return 0.0
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, list):
        return [_mask_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _mask_json(v) for k, v in value.items()}
    return value


def is_placeholder(value: str) -> bool:
    """Whether a value in a key's place is plainly not a key (``xxxx...``, ``<key>``, ``$VAR``)."""
    value = value.strip()
    return (
        not value
        or len(set(value)) == 1
        or value.startswith(("<", "$", "{"))
        or value.lower() in {"redacted", "placeholder", "your-key", "none", "null"}
    )


def parse_redact_field(spec: str) -> tuple[str, ...]:
    """A ``--redact-field`` spec as path segments.

    A JSON pointer (``/data/token``) or a dotted path (``data.token``); ``*`` matches any key or
    index of one level, a leading ``**`` any depth (``**.token``: every ``token`` key).
    """
    try:
        parts = parse_field(spec)
    except ValueError:
        raise ConfigError(
            "--redact-field",
            f"{spec.strip()!r} names no field, or has an empty segment; use /data/token or "
            "data.token (** for any depth)",
        ) from None
    if "**" in parts[1:]:
        raise ConfigError("--redact-field", f"{spec!r}: ** only in first place")
    return parts


def _char(c: str) -> str:
    """A pattern for one character of a secret, spelled any way a URL or JSON spells it: as
    itself (either case), percent-encoded (once or twice, either case of hex), ``\\u00XX``."""
    cases = {c, c.upper(), c.lower()}
    alternatives = {re.escape(x) for x in cases}
    for code in {f"{ord(x):02x}" for x in cases if ord(x) < 128}:
        alternatives.add(f"%(?:25)?(?i:{code})")
        alternatives.add(f"\\\\u00(?i:{code})")
    return "(?:" + "|".join(sorted(alternatives)) + ")"


def base64_cores(data: bytes) -> set[str]:
    """The base64 (standard and URL-safe) characters that spell ``data`` wherever it sits in
    an encoded blob: one run per alignment (offset modulo 3), without the characters shared
    with the neighbouring bytes."""
    cores = set()
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + data).decode("ascii")
        core = encoded[-(-4 * shift // 3) : (4 * (shift + len(data))) // 3]
        cores |= {core, core.replace("+", "-").replace("/", "_")}
    return cores


def encoded_forms(secret: str) -> list[str]:
    """Regular expressions for every common spelling of ``secret``: itself in either case,
    with any characters percent-encoded (once or twice) or JSON-escaped; the hex of its bytes
    (either case); its base64 and base64url (at each alignment, in a longer blob too)."""
    forms = ["".join(_char(c) for c in secret)]
    for variant in {secret, secret.lower(), secret.upper()}:
        raw = variant.encode("utf-8")
        forms.append(f"(?i:{raw.hex()})")
        forms += [re.escape(core) for core in base64_cores(raw)]
    return list(dict.fromkeys(forms))


@dataclass(frozen=True)
class Redactor:
    """Removes secrets from exchanges before they touch disk.

    ``secrets`` are the actual values (the key) scrubbed wherever they appear, in any common
    encoding (:func:`encoded_forms`: case, percent-encoding, JSON escapes, hex, base64 and
    base64url); ``headers`` are extra header names to mask; ``fields`` extra body locations
    (see :func:`parse_field`).
    """

    secrets: tuple[str, ...] = field(default=(), repr=False)
    headers: frozenset[str] = frozenset()
    fields: tuple[tuple[str, ...], ...] = ()
    conventions: Conventions = field(default_factory=_default_conventions, repr=False)
    _pattern: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        fragments = [f for s in self.secrets if s for f in encoded_forms(s)]
        fragments.sort(key=len, reverse=True)
        pattern = re.compile("|".join(fragments)) if fragments else None
        object.__setattr__(self, "_pattern", pattern)

    @classmethod
    def build(
        cls,
        secrets: Iterable[str] = (),
        headers: Iterable[str] = (),
        fields: Iterable[str] = (),
        conventions: Conventions | None = None,
    ) -> Redactor:
        """A redactor from raw values, header names and ``--redact-field`` specs."""
        values = sorted({s for s in secrets if s}, key=len, reverse=True)
        for s in values:
            if len(s) < 8 or any(c.isspace() for c in s):
                raise ConfigError(
                    "key",
                    "a key is 32 hexadecimal characters; this value is too "
                    "short or holds spaces: check the variable --key-env names",
                )
        return cls(
            tuple(values),
            frozenset(h.lower() for h in headers),
            tuple(parse_redact_field(f) for f in fields),
            conventions or _default_conventions(),
        )

    # -- strings ---------------------------------------------------------------------------

    def text(self, value: str) -> str:
        """``value`` with every secret replaced by its placeholder (for messages, URLs, bodies)."""
        if self._pattern is None:
            return value
        return self._pattern.sub(lambda m: "x" * len(m.group(0)), value)

    def log_text(self, value: str) -> str:
        """``value`` fit for a log, a terminal or a report: every run of :data:`FRAGMENT` or
        more characters of a secret replaced by ``***``.

        The run is found in any case (``ACF7...``), URL-encoded (``quote``, ``quote_plus``),
        JSON-escaped, and base64-encoded (standard or URL-safe, at any offset in the encoded
        text, as in a ``Basic`` authorization); a secret shorter than :data:`FRAGMENT` is
        scrubbed whole. Unlike :meth:`text`, the text's shape is not kept.
        """
        found = sorted(
            (m.start(), m.start() + len(m.group(1)))
            for pattern in self._fragments
            for m in pattern.finditer(value)
        )
        if not found:
            return value
        spans = [list(found[0])]
        for start, end in found[1:]:
            if start <= spans[-1][1]:  # overlapping or touching runs are one
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        out, last = [], 0
        for start, end in spans:
            out += [value[last:start], REDACTED]
            last = end
        out.append(value[last:])
        return "".join(out)

    @cached_property
    def _fragments(self) -> tuple[re.Pattern[str], ...]:
        """Every run of FRAGMENT characters of each secret's forms, as overlapping matches:
        the plain forms without case, the base64 forms (where case is meaning) with it. Two
        patterns: one alternation of both is several times slower than the two passes."""
        loose: set[str] = set()
        exact: set[str] = set()
        for secret in self.secrets:
            for form in _plain_forms(secret):
                loose |= _runs(form)
            for form in _base64_forms(secret):
                exact |= _runs(form, shortest=FRAGMENT)
        flagged = [(loose, re.IGNORECASE), (exact, re.NOFLAG)]
        return tuple(
            re.compile(f"(?=({_trie(words)}))", flags) for words, flags in flagged if words
        )

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self._scrub(v) for v in value]
        if isinstance(value, dict):
            return {self.text(k): self._scrub(v) for k, v in value.items()}
        return value

    # -- parts -----------------------------------------------------------------------------

    def header(self, name: str, value: str) -> str:
        """The redacted value of one header."""
        low = name.lower()
        value = self.text(value)
        conv = self.conventions
        if low == conv.key_header.lower():
            return "x" * len(value)
        if low == conv.request_context_header:
            out = _GUID.sub(ZERO_GUID, value)
            return out if out != value else request_context_placeholder(conv)
        if low in ("authorization", "proxy-authorization"):
            scheme, _, credentials = value.partition(" ")
            return f"{scheme} {mask(credentials)}" if credentials else mask(value)
        if low in ("cookie", "set-cookie"):
            return _mask_cookie(value, set_cookie=low == "set-cookie")
        if low in self.headers:
            return mask(value)
        return value

    def header_map(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Every header redacted (names kept as given)."""
        return {self.text(k): self.header(k, v) for k, v in headers.items()}

    def query(self, query: Mapping[str, str]) -> dict[str, str]:
        """Query parameters redacted: the key parameter and the configured field names."""
        conv = self.conventions
        names = {f[-1] for f in self.fields if len(f) == 1 or f[0] == "**"}
        out: dict[str, str] = {}
        for k, v in query.items():
            if conv.key_query is not None and k.lower() == conv.key_query.lower():
                out[k] = "x" * len(v)
            elif k in names:
                out[k] = mask(v)
            else:
                out[k] = self.text(v)
        return out

    def body(self, body: Any) -> Any:
        """The body with configured fields masked and every secret scrubbed."""
        out = self._scrub(body)
        for path in self.fields:
            out = _mask_at(out, path)
        return out

    def exchange(self, exchange: Exchange) -> Exchange:
        """A copy of ``exchange`` with nothing secret left in it."""
        req, resp = exchange.request, exchange.response
        request = Request(
            req.method,
            self.text(req.path),
            MappingProxyType(self.query(req.query)),
            MappingProxyType(self.header_map(req.headers)),
        )
        response = Response(
            resp.status, self.body(resp.body), MappingProxyType(self.header_map(resp.headers))
        )
        meta = MappingProxyType(self._scrub(dict(exchange.meta)))
        out = Exchange(exchange.operation_id, exchange.name, request, response, meta, exchange.file)
        self.assert_clean(out.dumps())
        return out

    def assert_clean(self, text: str) -> None:
        """Raise if a secret survived in ``text`` (a last guard before anything is written)."""
        if self._pattern is not None and self._pattern.search(text):
            raise ConfigError("redaction", "a secret survived redaction; nothing was written")


@lru_cache(maxsize=8)
def log_redactor(secrets: tuple[str, ...]) -> Redactor:
    """The Redactor of :meth:`Redactor.log_text` for these secrets, built once (the plugin,
    its reports and :meth:`pivotkit.client.ApiKey.scrub` share it)."""
    return Redactor(secrets=secrets)


def _plain_forms(secret: str) -> set[str]:
    """The secret as text may hold it: as is, URL-encoded, JSON-escaped (case aside)."""
    from urllib.parse import quote, quote_plus

    forms = {secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1]}
    return {f for f in forms if f}


def _base64_forms(secret: str) -> set[str]:
    """The base64 characters that depend on the secret's bytes alone, for each of the three
    offsets the secret can start at in an encoded stream, each case form, both alphabets."""
    forms: set[str] = set()
    for text in {secret, secret.lower(), secret.upper()}:
        raw = text.encode("utf-8")
        for shift in range(3):
            first, end = -(-8 * shift // 6), 8 * (shift + len(raw)) // 6
            for encode in (base64.b64encode, base64.urlsafe_b64encode):
                forms.add(encode(b"\0" * shift + raw).decode("ascii")[first:end])
    return forms


def _runs(form: str, shortest: int = 0) -> set[str]:
    """Every run of FRAGMENT characters of ``form``; the whole form when it is shorter (unless
    it is shorter than ``shortest``: then nothing)."""
    if len(form) < FRAGMENT:
        return {form} if len(form) >= shortest else set()
    return {form[i : i + FRAGMENT] for i in range(len(form) - FRAGMENT + 1)}


def _trie(words: Iterable[str]) -> str:
    """A regular expression matching any of ``words``, shared prefixes factored out (a plain
    alternation of a few hundred words is several times slower on long text)."""
    tree: dict[str, Any] = {}
    for word in words:
        node = tree
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}
    return _trie_node(tree)


def _trie_node(node: dict[str, Any]) -> str:
    branches = [re.escape(char) + _trie_node(sub) for char, sub in sorted(node.items()) if char]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if "" in node:  # a word ends here and longer ones go on
        return f"(?:{body})?"
    return body


def _mask_cookie(value: str, *, set_cookie: bool) -> str:
    parts = []
    for segment in value.split(";"):
        name, eq, val = segment.partition("=")
        if eq and not (set_cookie and name.strip().lower() in _COOKIE_ATTRIBUTES):
            parts.append(f"{name}={mask(val)}")
        else:
            parts.append(segment)
    return ";".join(parts)


def _mask_at(node: Any, path: tuple[str, ...]) -> Any:
    """``node`` with the value(s) at ``path`` masked (a missing path changes nothing)."""
    if not path:
        return _mask_json(node)
    head, rest = path[0], path[1:]
    if head == "**":
        node = _mask_at(node, rest)
        if isinstance(node, dict):
            return {k: _mask_at(v, path) for k, v in node.items()}
        if isinstance(node, list):
            return [_mask_at(v, path) for v in node]
        return node
    if isinstance(node, dict):
        return {k: (_mask_at(v, rest) if head in ("*", k) else v) for k, v in node.items()}
    if isinstance(node, list):
        return [(_mask_at(v, rest) if head in ("*", str(i)) else v) for i, v in enumerate(node)]
    return node


def example_of(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A short, secret-free copy of an observed value for reports: the secrets scrubbed,
    key-shaped strings (32 lowercase hex) masked, long strings and containers cut."""
    with contextlib.suppress(ConfigError):  # a secret too short to scrub: _cut still masks
        value = Redactor.build(secrets=[s for s in secrets if s]).body(value)
    return _cut(value)


def scrubbed(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A whole copy of a JSON value fit to be stored: the secrets scrubbed and key-shaped
    strings (32 lowercase hex) masked, in keys and values alike, nothing cut."""
    with contextlib.suppress(ConfigError):
        value = Redactor.build(secrets=[s for s in secrets if s]).body(value)
    return _mask_key_shaped(value)


def _mask_key_shaped(value: Any) -> Any:
    if isinstance(value, str):
        return KEY_SHAPED.sub(lambda m: "x" * 32, value)
    if isinstance(value, list):
        return [_mask_key_shaped(v) for v in value]
    if isinstance(value, dict):
        return {_mask_key_shaped(k): _mask_key_shaped(v) for k, v in value.items()}
    return value


def _cut(value: Any) -> Any:
    if isinstance(value, str):
        out = KEY_SHAPED.sub(lambda m: "x" * 32, value)
        return out if len(out) <= _EXAMPLE_MAX else out[:_EXAMPLE_MAX] + "..."
    if isinstance(value, list):
        return [_cut(v) for v in value[:3]] + (["..."] if len(value) > 3 else [])
    if isinstance(value, dict):
        return {k: _cut(v) for k, v in list(value.items())[:8]}
    return value


# The scanner of files for key-shaped leftovers lives in pivotkit.scanner; re-exported here.
from pivotkit.scanner import scan_secrets  # noqa: E402

__all__ = [
    "Redactor",
    "scan_secrets",
]
