"""pivotkit.conformance: each way a response can break the contract, with real httpx responses."""

from __future__ import annotations

import gzip
import json
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import flask
import httpx
import pytest

from pivotkit.conformance import Conformance, Problem, request_line
from pivotkit.errors import ResponseMismatch
from pivotkit.harness import make_app
from tests.helpers import CONVENTIONS, FULL, WSGI, key_headers, path_of

CONTENT = path_of("getContent", id=7488)
NOWHERE = CONTENT.replace("contents/7488", "nowhere")  # a path no operation has
KEY_QUERY = str(CONVENTIONS.key_query)  # the bundled contract also takes the key in the query
BASE = "http://mock.test"
JSON_UTF8 = CONVENTIONS.backend_content_type
Headers = list[tuple[str, str]]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> flask.Flask:
    """The mock app, bundled fixtures, its own state file."""
    state = tmp_path_factory.mktemp("conformance") / "state.sqlite"
    return make_app({"PIVOT_STATE": str(state)})


@pytest.fixture(scope="module")
def conformance() -> Conformance:
    """Checks against the bundled contract."""
    return Conformance()


def _get(
    wsgi: WSGI,
    path: str = CONTENT,
    *,
    key: str | None = FULL,
    params: Mapping[str, str] | None = None,
    **headers: str,
) -> httpx.Response:
    """GET ``path`` from a WSGI app through httpx (the key in the header unless None)."""
    sent = {**(key_headers(key) if key is not None else {}), **headers}
    with httpx.Client(transport=httpx.WSGITransport(app=wsgi), base_url=BASE) as client:
        return client.get(path, params=params, headers=sent)


def _rewritten(
    wsgi: WSGI,
    *,
    headers: Callable[[Headers], Headers] = lambda h: h,
    environ: Callable[[dict[str, Any]], None] = lambda e: None,
) -> WSGI:
    """The app with its request environ and its response headers changed in transit."""

    def rewrite(env: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        environ(env)

        def start(status: str, sent: Headers, *exc_info: Any) -> Any:
            return start_response(status, headers(list(sent)), *exc_info)

        return wsgi(env, start)

    return rewrite


def _without(name: str) -> Callable[[Headers], Headers]:
    return lambda headers: [(n, v) for n, v in headers if n.lower() != name]


def _replaced(name: str, value: str) -> Callable[[Headers], Headers]:
    return lambda headers: [(n, value if n.lower() == name else v) for n, v in headers]


def _shaped(
    status: int = 200,
    body: Any = None,
    *,
    raw: bytes | None = None,
    path: str = CONTENT,
    headers: Mapping[str, str] | None = None,
    request_headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """A response the mock never sends, through httpx.MockTransport: ``raw`` bytes or the
    JSON of ``body``, with a content type of JSON in UTF-8 and the right content-length
    unless ``headers`` say otherwise."""
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {"content-type": JSON_UTF8, "content-length": str(len(data)), **(headers or {})}

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers=sent, content=iter([data]))

    with httpx.Client(transport=httpx.MockTransport(handler), base_url=BASE) as client:
        return client.get(path, headers=request_headers)


def _provider_headers() -> dict[str, str]:
    """Every header the provider sends with a JSON 200 (a fresh request-context)."""
    headers = dict(CONVENTIONS.provider_headers)
    if CONVENTIONS.request_context_header:
        headers[CONVENTIONS.request_context_header] = CONVENTIONS.request_context(str(uuid.uuid4()))
    return headers


def _only(problems: list[Problem]) -> Problem:
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def _body(app: flask.Flask) -> Any:
    return _get(app).json()


# -- a conforming answer -----------------------------------------------------------------------


def test_the_mocks_answer_conforms_and_check_returns_its_body(
    app: flask.Flask, conformance: Conformance
) -> None:
    """The mock's gzip 200 of getContent 7488 has no problem; check returns the JSON body."""
    response = _get(app)
    assert response.headers["content-encoding"] == "gzip"
    assert conformance.problems(response) == []
    assert conformance.check(response) == response.json()
    assert conformance.check(response)["data"]["id"] == 7488


def test_identity_answer_conforms_when_gzip_is_not_asked_for(
    app: flask.Flask, conformance: Conformance
) -> None:
    """Accept-Encoding identity: a plain body with its own content-length is no problem."""
    response = _get(app, **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in response.headers
    assert conformance.problems(response) == []


def test_a_gateway_401_conforms_without_charset_or_provider_headers(
    app: flask.Flask, conformance: Conformance
) -> None:
    """The gateway's 401 (application/json without charset, no provider headers) is a
    declared answer: no problem when it is what was expected."""
    response = _get(app, key=None)
    assert response.status_code == 401
    assert conformance.problems(response, expect=401) == []


def test_the_operation_comes_from_the_request_or_the_caller(
    app: flask.Flask, conformance: Conformance
) -> None:
    """Without an operation id the request's method and path select it; a given id wins."""
    response = _get(app)
    found = conformance.operation_for(response.request)
    assert found is not None and found.operation_id == "getContent"
    assert conformance.operation_for(_get(app, NOWHERE).request) is None
    wrong = _only(conformance.problems(response, "listChannels"))
    assert wrong.operation_id == "listChannels" and wrong.pointer.startswith("/data")


# -- status ------------------------------------------------------------------------------------


def test_an_undeclared_status_is_a_problem(app: flask.Flask, conformance: Conformance) -> None:
    """The mock's ASP.NET 500 is not a status getContent declares: one problem at /status
    listing the declared ones, and nothing else is checked."""
    response = _get(app, **{"x-pivot-fault": "status=500"})
    problem = _only(conformance.problems(response))
    assert problem.pointer == "/status" and problem.value == 500
    assert problem.message == "status 500 is not declared (declared: 200, 400, 401, 403, 404, 429)"


def test_a_status_other_than_the_expected_one_is_a_problem(
    app: flask.Flask, conformance: Conformance
) -> None:
    """``expect``: a declared 401 where 200 was expected names both and quotes the body."""
    response = _get(app, key=None)
    problem = _only(conformance.problems(response, expect=200))
    assert problem.pointer == "/status" and problem.value == 401
    assert problem.message.startswith("expected 200, got 401 (body: '{")
    assert CONVENTIONS.messages.missing_key[:40] in problem.message
    several = _only(conformance.problems(response, expect=[404, 200]))
    assert several.message.startswith("expected 200 or 404, got 401")
    assert conformance.problems(response, expect={200, 401}) == []


# -- content type ------------------------------------------------------------------------------


def test_a_content_type_other_than_json_is_a_problem(conformance: Conformance) -> None:
    """A 200 in text/plain: the declared media type is named, the header is the value."""
    response = _shaped(body={}, headers={"content-type": "text/plain; charset=utf-8"})
    problems = conformance.problems(response, headers=False)
    problem = _only(problems)
    assert problem.pointer == "/headers/content-type"
    assert problem.message == "not application/json"
    assert problem.value == "text/plain; charset=utf-8"


def test_a_charset_other_than_the_backends_is_a_problem(conformance: Conformance) -> None:
    """JSON in ISO-8859-1, or without a charset, on a 200: the charset is named."""
    for ctype in ("application/json; charset=iso-8859-1", "application/json"):
        response = _shaped(body={}, headers={"content-type": ctype})
        problem = _only(conformance.problems(response, headers=False))
        assert problem.pointer == "/headers/content-type"
        assert problem.message == "charset is not utf-8" and problem.value == ctype


def test_charset_is_read_case_and_quotes_insensitively(conformance: Conformance) -> None:
    """``Application/JSON; Charset="UTF-8"`` is the same media type and charset."""
    response = _shaped(body={}, headers={"content-type": 'Application/JSON; Charset="UTF-8"'})
    assert conformance.problems(response, headers=False) == []


# -- body --------------------------------------------------------------------------------------


def test_a_body_that_is_not_json_is_a_problem(app: flask.Flask, conformance: Conformance) -> None:
    """The mock's invalid-json fault: one problem at the root naming the parse error, whose
    value is the start of the text."""
    response = _get(app, **{"x-pivot-fault": "invalid-json"})
    problem = _only(conformance.problems(response))
    assert problem.pointer == ""
    assert problem.message == "body is not JSON (JSONDecodeError)"
    assert isinstance(problem.value, str) and response.text.startswith(problem.value)
    with pytest.raises(ResponseMismatch, match="body is not JSON"):
        conformance.check(response)


def test_a_body_breaking_the_contract_names_pointer_and_value(
    app: flask.Flask, conformance: Conformance
) -> None:
    """A title that is a number: operation, JSON pointer and offending value in the problem,
    from problems() and from body_problems() alike."""
    body = _body(app)
    body["data"]["title"] = 123
    response = _shaped(
        body=body, headers=_provider_headers(), request_headers={"Accept-Encoding": "identity"}
    )
    problems = conformance.problems(response)
    problem = _only(problems)
    assert (problem.operation_id, problem.pointer, problem.value) == (
        "getContent",
        "/data/title",
        123,
    )
    assert str(problem) == "getContent at /data/title: 123 is not of type 'string' (value: 123)"
    assert conformance.body_problems("getContent", 200, body) == problems
    assert conformance.body_problems("getContent", 200, _body(app)) == []


# -- provider headers and encoding -------------------------------------------------------------


def test_a_missing_provider_header_is_a_problem(app: flask.Flask, conformance: Conformance) -> None:
    """The mock's 200 without X-Powered-By: "header missing", with the value it must have."""
    response = _get(_rewritten(app, headers=_without("x-powered-by")))
    problem = _only(conformance.problems(response))
    assert problem.pointer == "/headers/x-powered-by" and problem.message == "header missing"
    assert problem.value == "ASP.NET"
    assert str(problem) == "getContent at /headers/x-powered-by: header missing (value: 'ASP.NET')"


def test_a_header_breaking_its_schema_is_a_problem(
    app: flask.Flask, conformance: Conformance
) -> None:
    """X-Powered-By: PHP, and a request-context off its pattern: each header is named with
    the schema's message and the value sent."""
    response = _get(
        _rewritten(
            app,
            headers=lambda h: _replaced("request-context", "appId=nope")(
                _replaced("x-powered-by", "PHP/8.3")(h)
            ),
        )
    )
    problems = {p.pointer: p for p in conformance.header_problems("getContent", response)}
    assert set(problems) == {"/headers/x-powered-by", "/headers/request-context"}
    assert problems["/headers/x-powered-by"].value == "PHP/8.3"
    assert "'ASP.NET' was expected" in problems["/headers/x-powered-by"].message
    assert problems["/headers/request-context"].value == "appId=nope"
    assert "does not match" in problems["/headers/request-context"].message
    assert [p.pointer for p in conformance.problems(response, headers=False)] == []


def test_provider_headers_are_checked_on_a_200_only(
    app: flask.Flask, conformance: Conformance
) -> None:
    """A 401 without the provider's headers is no header problem; neither is a 200 checked
    with headers=False."""
    stripped = _rewritten(app, headers=_without("x-powered-by"))
    assert conformance.problems(_get(stripped, key=None), expect=401) == []
    assert conformance.problems(_get(stripped), headers=False) == []


def test_gzip_accepted_but_not_sent_is_a_problem(
    app: flask.Flask, conformance: Conformance
) -> None:
    """The request says gzip, the answer comes in identity (the mock never saw the header)."""
    deaf = _rewritten(app, environ=lambda env: env.pop("HTTP_ACCEPT_ENCODING", None))
    response = _get(deaf, **{"Accept-Encoding": "gzip"})
    assert "content-encoding" not in response.headers
    problem = _only(conformance.encoding_problems("getContent", response))
    assert problem.pointer == "/headers/content-encoding" and problem.value is None
    assert problem.message == "gzip was accepted but the body is not gzip"
    assert _only(conformance.problems(response)) == problem


def test_gzip_sent_but_not_accepted_is_a_problem(
    app: flask.Flask, conformance: Conformance
) -> None:
    """The request says identity, the answer is gzip anyway."""
    data = gzip.compress(json.dumps(_body(app)).encode())
    response = _shaped(
        raw=data,
        headers={**_provider_headers(), "content-encoding": "gzip"},
        request_headers={"Accept-Encoding": "identity"},
    )
    assert response.json()["data"]["id"] == 7488  # httpx decoded it all the same
    problem = _only(conformance.problems(response))
    assert problem.pointer == "/headers/content-encoding" and problem.value == "gzip"
    assert problem.message == "gzip was not accepted but the body is encoded"


def test_a_content_length_other_than_the_bytes_is_a_problem(
    app: flask.Flask, conformance: Conformance
) -> None:
    """The mock's answer with content-length off by ten: the header and the bytes that
    came on the wire are both named."""
    honest = _get(app)
    sent = int(honest.headers["content-length"])
    response = _get(_rewritten(app, headers=_replaced("content-length", str(sent + 10))))
    assert response.num_bytes_downloaded == sent
    problem = _only(conformance.problems(response))
    assert problem.pointer == "/headers/content-length" and problem.value == str(sent + 10)
    assert problem.message == f"says {sent + 10} bytes but {sent} came on the wire"


@pytest.mark.parametrize(
    ("accept", "encoding"),
    [
        pytest.param("gzip;q=0", None, id="gzip-refused"),
        pytest.param("*", "gzip", id="wildcard"),
        pytest.param("gzip;q=0.000", None, id="gzip-refused-three-decimals"),
        pytest.param("GZIP;Q=0", None, id="refused-in-capitals"),
        pytest.param("gzip ; q=0 , deflate", None, id="refused-with-spaces"),
        pytest.param("identity", None, id="identity"),
        pytest.param("identity, *;q=0", None, id="identity-only"),
        pytest.param("*;q=0", None, id="wildcard-refused"),
        pytest.param("gzip;q=0, *", None, id="named-refusal-beats-wildcard"),
        pytest.param("br, *;q=0.1", "gzip", id="wildcard-low-q"),
        pytest.param("x-gzip", "gzip", id="x-gzip-alias"),
        pytest.param("deflate, gzip;q=0.001", "gzip", id="lowest-q-still-accepts"),
        pytest.param("gzip;q=bogus", None, id="malformed-q-refuses"),
        pytest.param("gzip;q=1.5", None, id="out-of-range-q-refuses"),
        pytest.param("notgzip, gzipped", None, id="no-substring-match"),
        pytest.param(",, gzip ,", "gzip", id="empty-members"),
        pytest.param("", None, id="empty-value"),
    ],
)
def test_q_values_and_wildcards_decide_what_was_accepted(
    app: flask.Flask, conformance: Conformance, accept: str, encoding: str | None
) -> None:
    """``gzip;q=0`` refuses gzip and ``*`` accepts it, as the mock reads them: the mock's
    answer to each Accept-Encoding conforms, in whichever encoding it came."""
    response = _get(app, **{"Accept-Encoding": accept})
    assert response.headers.get("content-encoding") == encoding
    assert conformance.problems(response) == []


@pytest.mark.parametrize(
    ("accept", "sent"),
    [
        pytest.param("gzip;q=0", "gzip", id="gzip-refused-but-sent"),
        pytest.param("*;q=0", "gzip", id="wildcard-refused-but-sent"),
        pytest.param("identity", "compress", id="another-coding"),
    ],
)
def test_an_encoding_the_request_refused_is_a_problem(
    app: flask.Flask, conformance: Conformance, accept: str, sent: str
) -> None:
    """The q-values that refuse gzip make an encoded answer a problem, naming the coding."""
    data = gzip.compress(json.dumps(_body(app)).encode())
    response = _shaped(
        raw=data,
        headers={**_provider_headers(), "content-encoding": sent},
        request_headers={"Accept-Encoding": accept},
    )
    problem = _only(conformance.encoding_problems("getContent", response))
    assert problem.pointer == "/headers/content-encoding" and problem.value == sent
    assert problem.message == "gzip was not accepted but the body is encoded"


@pytest.mark.parametrize("sent", ["GZIP", "x-gzip", " gzip "])
def test_gzip_is_compared_as_a_coding_name(
    app: flask.Flask, conformance: Conformance, sent: str
) -> None:
    """A gzip body labelled in capitals, as x-gzip or with spaces is still gzip."""
    data = gzip.compress(json.dumps(_body(app)).encode())
    response = _shaped(
        raw=data,
        headers={**_provider_headers(), "content-encoding": sent},
        request_headers={"Accept-Encoding": "gzip;q=0.5, identity"},
    )
    assert conformance.encoding_problems("getContent", response) == []


# -- a path no operation has -------------------------------------------------------------------


def test_the_gateway_404_of_an_unknown_path_conforms(
    app: flask.Flask, conformance: Conformance
) -> None:
    """No operation fits: the mock's 404 is checked against the gateway's 404 body."""
    response = _get(app, NOWHERE)
    assert response.status_code == 404
    assert conformance.problems(response) == []
    assert conformance.check(response) == response.json()


def test_a_404_of_an_unknown_path_with_a_wrong_body_is_a_problem(
    conformance: Conformance,
) -> None:
    """A 404 whose body is not the gateway's: "(no operation)" and the pointer of each
    violation; a wrong message is shown with its value."""
    missing = conformance.problems(
        _shaped(
            404, {"error": "no route"}, path=NOWHERE, headers={"content-type": "application/json"}
        )
    )
    assert {p.operation_id for p in missing} == {"(no operation)"}
    assert {p.pointer for p in missing} == {""}
    assert any("'statusCode' is a required property" in p.message for p in missing)
    body = CONVENTIONS.messages.body(404, "Not here")
    wrong = _only(conformance.problems(_shaped(404, body, path=NOWHERE)))
    assert wrong.pointer == "/message" and wrong.value == "Not here"
    assert str(wrong).startswith("(no operation) at /message: ")


def test_an_unknown_path_answering_200_is_a_problem(conformance: Conformance) -> None:
    """Only a 404 is declared where no operation fits."""
    problem = _only(conformance.problems(_shaped(200, {}, path=NOWHERE)))
    assert problem.operation_id == "(no operation)" and problem.pointer == "/status"
    assert problem.message == "status 200 is not declared (declared: 404)"


# -- the request line and the error ------------------------------------------------------------


def test_the_key_in_the_query_is_hidden_from_the_request_line(app: flask.Flask) -> None:
    """request_line keeps method, path and query, without the contract's key parameter;
    ``hidden`` chooses which parameters to leave out."""
    response = _get(app, key=None, params={"lang": "en", KEY_QUERY: FULL})
    assert response.status_code == 200
    assert request_line(response.request) == f"GET {CONTENT}?lang=en"
    assert (
        request_line(response.request, frozenset({"lang"})) == f"GET {CONTENT}?{KEY_QUERY}={FULL}"
    )
    assert request_line(_get(app, key=None, params={KEY_QUERY: FULL}).request) == f"GET {CONTENT}"
    assert request_line(_get(app).request) == f"GET {CONTENT}"


def test_check_raises_a_response_mismatch_without_the_key(
    app: flask.Flask, conformance: Conformance
) -> None:
    """check() raises ResponseMismatch (an AssertionError) listing every problem under the
    request line; the key sent in the query is in neither."""
    response = _get(
        _rewritten(app, headers=_without("x-powered-by")),
        key=None,
        params={KEY_QUERY: FULL, "lang": "fr"},
    )
    with pytest.raises(ResponseMismatch) as caught:
        conformance.check(response)
    error = caught.value
    assert isinstance(error, AssertionError)
    assert error.line == f"GET {CONTENT}?lang=fr" and error.status == 200
    assert [str(p) for p in error.problems] == [
        "getContent at /headers/x-powered-by: header missing (value: 'ASP.NET')"
    ]
    assert str(error) == (
        f"GET {CONTENT}?lang=fr -> 200 breaks the contract:\n"
        "  - getContent at /headers/x-powered-by: header missing (value: 'ASP.NET')"
    )
    assert FULL not in str(error) and FULL not in error.line


# -- problems as text and the rest of the surface ----------------------------------------------


def test_a_problem_prints_operation_pointer_message_and_value() -> None:
    """Strings are quoted, other values are JSON (non-ASCII kept), the root is "/", and a
    value longer than 200 characters is cut with "..."."""
    assert str(Problem("getContent", "/data/id", "is wrong", 7)) == (
        "getContent at /data/id: is wrong (value: 7)"
    )
    assert str(Problem("getContent", "/data/title", "too short", "Blade")) == (
        "getContent at /data/title: too short (value: 'Blade')"
    )
    assert str(Problem("getContent", "", "not an object", {"titre": "Été"})) == (
        'getContent at /: not an object (value: {"titre": "Été"})'
    )
    assert str(Problem("x", "/a", "m")).endswith("(value: null)")
    long = str(Problem("listDays", "/data", "too long", list(range(300))))
    value = long.split("(value: ", 1)[1][:-1]
    assert len(value) == 200 and value.endswith("...") and value.startswith("[0, 1, 2")


def test_declared_headers_and_the_empty_result(conformance: Conformance) -> None:
    """declared_headers lists the provider's headers of a 200; is_empty_result knows the
    documented empty answer and nothing else."""
    declared = {name.lower() for name in conformance.declared_headers("getContent")}
    assert {name for name, _ in CONVENTIONS.provider_headers} - {"content-type"} <= declared
    assert conformance.is_empty_result({})
    assert not conformance.is_empty_result(CONVENTIONS.envelope.wrap(200, {"id": 7488}))


def test_the_default_contract_is_the_bundled_one() -> None:
    """Conformance() and Conformance(load_contract()) check alike."""
    from pivotkit.contract import load_contract

    assert Conformance().contract is load_contract()
    assert Conformance(load_contract()).contract is load_contract()
