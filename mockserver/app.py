"""The mock's Flask app: ``create_app(config)``, and :class:`PivotMock`, the parts it holds."""

from __future__ import annotations

import atexit
import fcntl
import importlib
import importlib.util
import logging
import os
import secrets
import shutil
import sqlite3
import tempfile
import threading
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from mockserver.backend import Backend, prepared_cache
from mockserver.config import Settings, resolve_settings
from mockserver.corpus import Corpus, Loaded, Refused
from mockserver.dispatch import Dispatcher, WSGIApp
from mockserver.gateway import Gateway
from mockserver.index import FixtureIndex
from mockserver.journal import Journal
from mockserver.readiness import Readiness
from mockserver.scenarios import Scenarios, scenarios_file
from mockserver.state import SharedState, UsageRow, is_redis_url, open_state
from mockserver.uploads import UploadGuard
from mockserver.wire import HttpDate, Prepared, prepare_gateway
from pivotkit.accounts import Account, AccountsFile
from pivotkit.check import DUPLICATE
from pivotkit.contract import Contract, load_contract
from pivotkit.errors import ConfigError, PivotError, ReloadRefused
from pivotkit.fixtures import FixtureSet
from pivotkit.locations import default_fixtures_dir, outside_package
from pivotkit.recorder import RecordThrough

log = logging.getLogger("pivotkit.mock")

ADMIN_PREFIX = "/__pivot"
#: Flask setting of the production server: start on the index kept from the last run and stat
#: the files after the first request, in one worker (a reload when anything changed).
DEFER_INDEX_CHECK = "PIVOTKIT_DEFER_INDEX_CHECK"


def bundled_accounts_file() -> Path:
    """The default accounts file shipped in ``fixtures/accounts.toml``."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (
        here / "fixtures" / "accounts.toml",
        here / "pivotkit" / "_bundled" / "fixtures" / "accounts.toml",
    ):
        if candidate.is_file():
            return candidate
    return default_fixtures_dir() / "accounts.toml"


def _remove_if_owner(folder: str, owner: int) -> None:
    """Remove a temporary state folder, from the process that made it only (not a fork)."""
    if os.getpid() == owner:
        shutil.rmtree(folder, ignore_errors=True)


class PivotMock:
    """Everything the mock holds, reachable as ``app.extensions["pivot"]``.

    Attributes: ``settings`` (validated), ``contract``, ``fixtures``, ``accounts``,
    ``backend`` (routes, prepared answers), ``gateway`` (keys, rights, limits), ``state``
    (SQLite or Redis), ``admin_token``, ``record_through`` (the callable that records unrecorded
    requests, or None), ``dispatcher`` (the API's hot path), ``journal`` (the requests answered,
    or None when off), ``scenarios`` (Prefer, sequences, timelines).
    The developer portal's API is delegated here: :attr:`accounts`, :meth:`verify_password`,
    :meth:`current_keys`, :meth:`regenerate_key`, :meth:`usage`.
    """

    def __init__(
        self, app: Flask, settings: Settings, *, record_through: RecordThrough | None = None
    ) -> None:
        self.app = app
        self.settings = settings
        self.record_through = record_through
        self.contract: Contract = load_contract(settings.schemas)
        self.fixtures_dir = settings.fixtures or default_fixtures_dir()
        if not self.fixtures_dir.is_dir():
            raise ConfigError("PIVOT_FIXTURES", f"{self.fixtures_dir}: no such directory")
        self.accounts_path = settings.accounts or (
            self.fixtures_dir / "accounts.toml"
            if (self.fixtures_dir / "accounts.toml").is_file()
            else bundled_accounts_file()
        )
        self._check(settings)
        self.index_folder = self._index_folder(settings)
        kept = None
        if app.config.get(DEFER_INDEX_CHECK):
            kept = Corpus.kept(
                self.fixtures_dir, self.accounts_path, self.contract, self.index_folder
            )
        self.corpus = kept or self._read()
        self._check_pending = kept is not None
        loaded = self.corpus.load(self.contract, strict=settings.strict_fixtures)
        self.fixture_cache = prepared_cache(settings.fixture_cache)
        self.state = self._open_state(settings)
        self.admin_token = settings.admin_token or self.state.meta(
            "admin_token", secrets.token_urlsafe(24)
        )
        self.request_context = self.state.meta(
            "request_context", self.contract.conventions.request_context(str(uuid.uuid4()))
        )
        self.date = HttpDate()
        self.readiness = Readiness()
        self._switching = threading.Lock()
        self._install(loaded, self.state.generations().fixtures)
        self.journal = self._open_journal(settings)
        conv = self.contract.conventions
        errors = self.gateway.errors
        self.errors: dict[Any, Prepared] = {
            e: prepare_gateway(e.status, errors.body(e), conv.gateway_content_type)
            for e in (errors.missing_key, errors.invalid_key, errors.not_found)
        }
        self.dispatcher = Dispatcher(self)

    # -- loading -----------------------------------------------------------------------------

    def _check(self, settings: Settings) -> None:
        if not self.contract.is_empty_result(settings.empty_body):
            raise ConfigError(
                "PIVOT_EMPTY_BODY",
                f"{settings.empty_body!r} is not an empty result (see schemas/empty-result.json)",
            )
        for op in self.contract.operations.values():
            if op.path.startswith((ADMIN_PREFIX, settings.portal_prefix + "/")):
                raise ConfigError(
                    "PIVOT_PORTAL_PREFIX",
                    f"{op.path} of {op.operation_id} collides with the mock's own pages",
                )

    @staticmethod
    def _open_state(settings: Settings) -> SharedState:
        path: Path | str
        if settings.state is not None:
            path = settings.state
            if is_redis_url(path):  # its own errors: bad URL (exit 2), unreachable (exit 3)
                return open_state(path, usage_flush=settings.usage_flush)
        else:
            folder = tempfile.mkdtemp(prefix="pivotkit-state-")
            atexit.register(_remove_if_owner, folder, os.getpid())
            path = Path(folder) / "state.sqlite"
        try:
            return open_state(path, usage_flush=settings.usage_flush)
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError("PIVOT_STATE", f"{path}: cannot open the state ({exc})") from None

    @staticmethod
    def _index_folder(settings: Settings) -> Path:
        """Where the fixture index is kept: ``PIVOT_INDEX_DIR``, else beside the state file
        (reused by the next start), else in a temporary folder of this process."""
        if settings.index_dir is not None:
            return settings.index_dir
        if isinstance(settings.state, Path):
            return settings.state.parent
        folder = tempfile.mkdtemp(prefix="pivotkit-index-")
        atexit.register(_remove_if_owner, folder, os.getpid())
        return Path(folder)

    def _read(self, previous: FixtureIndex | None = None) -> Corpus:
        try:
            return Corpus.read(
                self.fixtures_dir, self.accounts_path, self.contract, self.index_folder, previous
            )
        except (OSError, sqlite3.Error) as exc:
            raise ConfigError(
                "PIVOT_STATE",
                f"{self.index_folder}: cannot open the state folder to keep the fixture index "
                f"({getattr(exc, 'strerror', None) or exc})",
            ) from None

    def _install(self, loaded: Loaded, generation: int) -> None:
        """Serve ``loaded`` (validated fixtures and accounts) as fixtures ``generation``."""
        backend = Backend(
            self.contract,
            loaded.fixtures,
            request_context=self.request_context,
            empty_body=self.settings.empty_body,
            dynamic=self.settings.dynamic,
            cache=self.fixture_cache,
        )
        gateway = Gateway(loaded.accounts, self.state, self.contract.conventions)
        self._loaded = loaded
        self.gateway, self.backend = gateway, backend
        self.scenarios = self._load_scenarios()
        self._fixtures_generation = generation

    def _open_journal(self, settings: Settings) -> Journal | None:
        if not settings.journal:
            return None
        try:
            return Journal(
                self.state.local_path, settings.journal_bytes, self.contract.conventions.key_query
            )
        except OSError as exc:
            raise ConfigError("PIVOT_JOURNAL", f"cannot open the journal ({exc})") from None

    def _load_scenarios(self) -> Scenarios:
        declared = scenarios_file(self.settings.scenarios, self.fixtures_dir)
        return Scenarios(self.state, self.contract, declared, self.backend)

    def reload(self, *, only_if_changed: bool = False) -> dict[str, Any]:
        """Re-read fixtures and accounts, validate them once here, then switch every worker
        (``only_if_changed``: unless every file and the accounts are as they were).

        All or nothing: when the accounts file is wrong, or a fixture served now would be
        dropped because its file no longer loads (truncated, invalid, breaking the contract),
        or (``--strict``) any fixture is refused, ReloadRefused says why and nothing changes in
        any worker. A deleted file is dropped; a new file that does not load is refused and
        listed, as at start. Otherwise the snapshot of exactly the bytes validated here is
        published in the shared state and every worker switches to it on its next request.
        """
        current = self.corpus
        corpus = self._read(current.index)
        same = corpus.index.path == current.index.path and corpus.accounts == current.accounts
        if only_if_changed and same and corpus.walk.unchanged:
            self.corpus = replace(current, walk=corpus.walk)
            return {"fixtures": len(self.backend.fixtures), "index": corpus.walk.as_dict()}
        try:
            loaded = corpus.load(self.contract, strict=self.settings.strict_fixtures)
        except PivotError as exc:
            raise ReloadRefused([str(exc)]) from None
        dropped = [
            r
            for r in loaded.refused
            if r.kind != DUPLICATE and current.index.serves(r.path.relative_to(self.fixtures_dir))
        ]
        if dropped:
            raise ReloadRefused([f"{r} (served now: fix it, or delete the file)" for r in dropped])
        with self._switching:
            generation = self.state.publish_corpus(corpus.to_blob())
            self._install(loaded, generation)
            self.corpus = corpus
        return {
            "fixtures": len(self.backend.fixtures),
            "generation": generation,
            "refused": self.refused_line,
            "problems": self.fixture_problems,
            "accounts": [a.name for a in self.gateway.accounts],
            "index": corpus.walk.as_dict(),
        }

    def sync(self) -> None:
        """Catch up with the other workers: a reload they validated, regenerated keys."""
        if self._check_pending:
            self._check_pending = False
            threading.Thread(
                target=self._check_files, name="pivot-index-check", daemon=True
            ).start()
        generations = self.state.generations()
        if generations.fixtures != self._fixtures_generation:
            self._switch(generations.fixtures)
        self.gateway.sync(generations.keys)
        self.scenarios.sync(generations.scenarios)

    def _check_files(self) -> None:
        """After a start on the kept index: stat the files (in one worker: the first that
        takes the lock), and reload when anything changed while the mock was stopped."""
        lock = self.index_folder / "fixture-index" / ".check.lock"
        try:
            handle = lock.open("a")
        except OSError:
            return
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return  # another worker checks
            try:
                done = self.reload(only_if_changed=True)
            except ReloadRefused as exc:
                log.warning(
                    "fixtures changed while the mock was stopped: %s", "; ".join(exc.reasons)
                )
                return
            except (PivotError, OSError, sqlite3.Error) as exc:
                log.error("checking the fixtures against their index failed: %s", exc)
                return
            if "generation" in done:
                log.info("fixtures changed while the mock was stopped: %s", done["index"])

    def _switch(self, generation: int) -> None:
        """Serve the corpus another worker published as ``generation``. Requests of this worker
        wait meanwhile, so none is answered from the older fixtures once the reload answered."""
        with self._switching:
            if generation == self._fixtures_generation:
                return  # another thread of this worker switched already
            blob = self.state.corpus(generation)
            if blob is None:  # replaced by a newer reload: take that one
                generation = self.state.generations().fixtures
                blob = self.state.corpus(generation)
            try:
                corpus = self._published(blob, generation)
                loaded = corpus.load(self.contract)
            except (PivotError, ValueError, zlib.error) as exc:
                log.error("fixtures generation %s cannot be served here: %s", generation, exc)
                self._fixtures_generation = generation  # do not retry on every request
                return
            self._install(loaded, generation)
            self.corpus = corpus

    def _published(self, blob: bytes | None, generation: int) -> Corpus:
        """The corpus of a reload published as ``blob``. Its index is opened when it lies in
        this instance's index folder (another worker of this machine made it); an instance
        elsewhere (another host on the same Redis) reads and validates the same fixtures
        folder itself, against its own index, and publishes nothing."""
        if blob is None:
            raise ValueError("no snapshot of these fixtures in the state")
        root, index_path = Corpus.blob_paths(blob)
        if root != self.fixtures_dir:
            raise ValueError(f"the reload was of {root}, this instance serves {self.fixtures_dir}")
        if index_path.parent.parent.resolve() == self.index_folder.resolve():
            return Corpus.from_blob(blob)
        log.info("fixtures generation %s: reloaded elsewhere, reading them here", generation)
        return self._read(self.corpus.index)

    @property
    def refused(self) -> tuple[Refused, ...]:
        """The fixture files left out: at load, and (in this worker) found broken on use."""
        return (*self._loaded.refused, *self.backend.stats.broken)

    @property
    def refused_line(self) -> str:
        """One line: how many fixtures were refused and why ("" when none was)."""
        return Loaded(self._loaded.accounts, self._loaded.fixtures, self.refused).refused_line()

    @property
    def fixture_problems(self) -> list[str]:
        """One line per fixture file left out."""
        return [str(r) for r in self.refused]

    # -- the portal's API ----------------------------------------------------------------------

    @property
    def accounts(self) -> tuple[Account, ...]:
        """Every account, in file order (see :class:`pivotkit.accounts.Account`)."""
        return self.gateway.accounts

    @property
    def accounts_file(self) -> AccountsFile:
        """The accounts file as loaded: ``path``, ``accounts``, ``demo_keys``."""
        return self.gateway.file

    @property
    def fixtures(self) -> FixtureSet:
        """The fixtures being served."""
        return self.backend.fixtures

    def verify_password(self, name: str, password: str) -> bool:
        """See :meth:`Gateway.verify_password`."""
        return self.gateway.verify_password(name, password)

    def current_keys(self, name: str) -> tuple[str, str]:
        """See :meth:`Gateway.current_keys`."""
        return self.gateway.current_keys(name)

    def regenerate_key(self, name: str, slot: str) -> str:
        """See :meth:`Gateway.regenerate_key`."""
        return self.gateway.regenerate_key(name, slot)

    def usage(self, name: str) -> list[UsageRow]:
        """See :meth:`Gateway.usage`."""
        return self.gateway.usage(name)

    def reset(self) -> None:
        """Clean state for the next test: keys from the accounts file, no counters, no usage,
        an empty journal, the declared sequences from their start, no timeline started."""
        self.state.reset()
        self.gateway.sync(self.state.generations().keys)
        self.scenarios.reset()
        if self.journal is not None:
            self.journal.clear()


def _record_through(settings: Settings) -> RecordThrough | None:
    """The record-through callable the settings ask for (``PIVOT_RECORD_*``), or None."""
    if not settings.record_from:
        return None
    from pivotkit.recorder import make_record_through
    from pivotkit.redact import Redactor

    key = os.environ.get(settings.record_key_env, "").strip()
    if not key:
        raise ConfigError(
            "PIVOT_RECORD_KEY_ENV",
            f"record-through needs the upstream key in "
            f"${settings.record_key_env}; export it (the key is never written "
            "anywhere)",
        )
    out = outside_package(
        settings.record_out or settings.fixtures or default_fixtures_dir(),
        "PIVOT_RECORD_OUT" if settings.record_out else "--fixtures",
    )
    contract = load_contract(settings.schemas)
    redactor = Redactor.build(
        headers=settings.record_redact_headers,
        fields=settings.record_redact_fields,
        conventions=contract.conventions,
    )
    return make_record_through(
        settings.record_from,
        key,
        out,
        settings.record_account,
        contract=contract,
        redactor=redactor,
        overwrite=settings.record_overwrite,
        budget=settings.record_budget,
        rate=settings.record_rate,
        timeout=settings.record_timeout,
        max_wait=settings.record_max_wait,
        max_size=settings.record_max_size,
        retries=1,
    )


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the mock: settings, contract, fixtures, accounts, state, admin pages, portal.

    ``config`` holds ``PIVOT_*`` settings (the highest layer, above the file named by
    ``PIVOT_CONFIG``, then the environment, then the defaults) and any Flask setting.
    """
    settings = resolve_settings(config)
    app = Flask("mockserver", static_folder=None)
    # Flask's own settings and the portal's PORTAL_*/PIVOT_PORTAL_* pass through.
    app.config.update(
        {
            k: v
            for k, v in (config or {}).items()
            if not k.startswith("PIVOT_") or k.startswith("PIVOT_PORTAL_")
        }
    )
    app.config.update(settings.as_config())
    app.config.setdefault("MAX_CONTENT_LENGTH", UploadGuard.max_body)
    mock = PivotMock(app, settings, record_through=_record_through(settings))
    app.extensions["pivot"] = mock
    from mockserver.admin import admin

    app.register_blueprint(admin, url_prefix=ADMIN_PREFIX)
    app.register_error_handler(404, _admin_not_found)
    _register_portal(app)
    mounted = any(name != "pivot_admin" for name in app.blueprints)
    # The portal's prefix goes to Flask only when a portal is mounted; otherwise those
    # paths are API paths like any other (the gateway's 404).
    own = (ADMIN_PREFIX, settings.portal_prefix) if mounted else (ADMIN_PREFIX,)
    pages: WSGIApp = UploadGuard(app.wsgi_app, deadline=settings.client_timeout)
    if settings.trust_proxy:
        # Behind that many proxies, X-Forwarded-For/-Proto/-Host are theirs: the client's
        # address (login throttle, upload caps) and scheme (the Secure cookie) come from them.
        n = settings.trust_proxy
        pages = ProxyFix(pages, x_for=n, x_proto=n, x_host=n, x_port=n)
    app.wsgi_app = mock.dispatcher.wsgi(  # type: ignore[method-assign, assignment]
        pages, own, settings.portal_prefix if mounted else None
    )
    return app


def _admin_not_found(error: Exception) -> Any:
    """Unknown pages under /__pivot/ answer JSON; the portal keeps its own 404 pages."""
    if request.path.startswith(ADMIN_PREFIX):
        return {"error": f"no admin endpoint {request.path}"}, 404
    return error


def _register_portal(app: Flask) -> None:
    """Mount ``mockserver.portal`` (it reads PIVOT_PORTAL_PREFIX) when the module exists."""
    try:
        portal = importlib.import_module("mockserver.portal")
    except ImportError as exc:
        if importlib.util.find_spec("mockserver.portal") is not None:
            log.warning("developer portal not mounted: %s", exc)
        return
    init_app = getattr(portal, "init_app", None)
    if callable(init_app):
        init_app(app)
