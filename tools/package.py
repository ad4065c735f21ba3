"""pivotkit as a user installs it: build the sdist and the wheel, check them, try the wheel.

``nox -s build`` runs every step (``python tools/package.py [--dist DIR]``): ``python -m build``,
``twine check --strict``, the wheel and the sdist hold every file of ``schemas/`` and
``fixtures/`` (the wheel under ``pivotkit/_bundled/``) and of the three packages, then the wheel
is installed in a fresh virtual environment and ``pivotkit serve`` from it answers the public
path with the demo key of its own bundled accounts file. tests/test_package.py drives the same
functions. Only the standard library: it runs before anything is installed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import venv
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Source directory -> where the wheel carries it (pyproject.toml's force-include).
BUNDLED = {"schemas": "pivotkit/_bundled/schemas", "fixtures": "pivotkit/_bundled/fixtures"}
PACKAGES = ("pivotkit", "mockserver", "contract_tests")
#: The public operation and id the served wheel is asked for (the provider's documented one).
PUBLIC_OPERATION, PUBLIC_ID = "getContent", 7488

# Run by the installed wheel's own interpreter: where it is, and what to ask its mock, read from
# its bundled contract and accounts file (the one accounts model), never written here.
_PROBE = f"""
import json, pathlib, pivotkit
from pivotkit.accounts import load_accounts
from pivotkit.contract import load_contract
here = pathlib.Path(pivotkit.__file__).resolve().parent
contract = load_contract()
accounts = load_accounts(here / "_bundled" / "fixtures" / "accounts.toml")
account = next(a for a in accounts.accounts if a.may_call({PUBLIC_OPERATION!r}))
print(json.dumps({{
    "package": str(here),
    "schemas": str(contract.directory.resolve()),
    "header": contract.conventions.key_header,
    "path": contract.operation({PUBLIC_OPERATION!r}).expand(id={PUBLIC_ID}),
    "account": account.name,
    "key": account.primary_key,
}}))
"""


class PackageError(RuntimeError):
    """A build, check or install step failed; the message says which and why."""


@dataclass(frozen=True)
class Built:
    """The two distributions ``python -m build`` made."""

    sdist: Path
    wheel: Path


@dataclass(frozen=True)
class Installed:
    """A fresh virtual environment holding the wheel."""

    root: Path
    python: Path
    package: Path  # the installed pivotkit/ (in site-packages)
    schemas: Path  # the contract the installed pivotkit loads by default
    header: str
    path: str
    account: str
    key: str

    def script(self, name: str) -> Path:
        """An entry point of the environment (``pivotkit``)."""
        return self.python.parent / name


def _run(command: Sequence[str | Path], what: str, **kwargs: object) -> str:
    result = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, check=False, **kwargs
    )
    if result.returncode != 0:
        raise PackageError(f"{what} failed ({result.returncode}): {result.stderr[-3000:]}")
    return result.stdout


def build(dist: Path) -> Built:
    """Build the sdist and the wheel of the checkout into ``dist`` (``python -m build``)."""
    with tempfile.TemporaryDirectory(prefix="pivotkit-build-") as tmp:
        _run([sys.executable, "-m", "build", "--outdir", tmp, ROOT], "python -m build")
        dist.mkdir(parents=True, exist_ok=True)
        made = []
        for built in sorted(Path(tmp).iterdir()):
            target = dist / built.name
            shutil.move(built, target)
            made.append(target)
    sdists = [p for p in made if p.name.endswith(".tar.gz")]
    wheels = [p for p in made if p.suffix == ".whl"]
    if len(sdists) != 1 or len(wheels) != 1:
        raise PackageError(f"python -m build made {[p.name for p in made]}")
    return Built(sdists[0], wheels[0])


def twine_check(built: Built) -> None:
    """``twine check --strict`` on both distributions (metadata, README rendering)."""
    _run([sys.executable, "-m", "twine", "check", "--strict", built.sdist, built.wheel], "twine")


def _expected(root: Path = ROOT) -> dict[str, str]:
    """Source file (relative to the checkout) -> its path in the wheel."""
    expected: dict[str, str] = {}
    for source, inside in BUNDLED.items():
        for path in sorted((root / source).rglob("*")):
            if path.is_file():
                rel = path.relative_to(root / source).as_posix()
                expected[f"{source}/{rel}"] = f"{inside}/{rel}"
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                rel = path.relative_to(root).as_posix()
                expected[rel] = rel
    return expected


def wheel_problems(wheel: Path, root: Path = ROOT) -> list[str]:
    """What the wheel lacks: each file of schemas/, fixtures/ (under pivotkit/_bundled/)
    and of the packages that is not in it, or differs from the checkout's."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        problems = []
        for source, inside in _expected(root).items():
            if inside not in names:
                problems.append(f"{wheel.name}: {inside} is missing (from {source})")
            elif archive.read(inside) != (root / source).read_bytes():
                problems.append(f"{wheel.name}: {inside} differs from {source}")
    if not any(n.endswith(".dist-info/entry_points.txt") for n in names):
        problems.append(f"{wheel.name}: no entry_points.txt (the pivotkit command, the plugin)")
    return problems


def sdist_problems(sdist: Path, root: Path = ROOT) -> list[str]:
    """What the sdist lacks of the files a wheel is built from."""
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    return [f"{sdist.name}: {s} is missing" for s in _expected(root) if s not in names]


def fresh_venv(where: Path, *requirements: str | Path) -> Installed:
    """A new virtual environment at ``where`` with ``requirements`` (the wheel first)
    installed by its own pip, and what its pivotkit says about itself."""
    if where.exists():
        shutil.rmtree(where)
    venv.create(where, with_pip=True)
    python = where / ("Scripts" if sys.platform == "win32" else "bin") / "python"
    _run([python, "-m", "pip", "install", "-q", *requirements], "pip install")
    facts = json.loads(_run([python, "-c", _PROBE], "the installed pivotkit", cwd=where))
    installed = Installed(
        where,
        python,
        Path(facts["package"]),
        Path(facts["schemas"]),
        facts["header"],
        facts["path"],
        facts["account"],
        facts["key"],
    )
    if where.resolve() not in installed.package.parents:
        raise PackageError(f"pivotkit was imported from {installed.package}, not from {where}")
    if installed.package not in installed.schemas.parents:
        raise PackageError(f"the installed pivotkit loads {installed.schemas}, not its own")
    return installed


def free_port() -> int:
    """A port of 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@contextlib.contextmanager
def serving(installed: Installed, workdir: Path, *args: str) -> Iterator[str]:
    """``pivotkit serve`` of the environment on a free port (state in ``workdir``); yields
    its base URL once it answers, and stops it (by its pid) after."""
    port = free_port()
    log = workdir / f"serve-{port}.log"
    command = [installed.script("pivotkit"), "serve", "--port", str(port)]
    command += ["--state", str(workdir / f"state-{port}.sqlite"), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=workdir)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise PackageError(f"pivotkit serve exited {process.returncode}: {log.read_text()}")
            with contextlib.suppress(OSError):
                if _get(f"{url}/__pivot/health")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise PackageError(f"pivotkit serve did not answer: {log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def serve_check(installed: Installed, workdir: Path) -> tuple[int, bytes]:
    """The status and body ``pivotkit serve`` of the environment gives for the public path
    with the demo key read from the wheel's bundled accounts file."""
    with serving(installed, workdir) as url:
        return _get(url + installed.path, {installed.header: installed.key})


def main(argv: Sequence[str] | None = None) -> int:
    """Every step, in order; the first failure stops with its reason (exit 1)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dist", type=Path, default=ROOT / "dist", help="where to put them")
    args = parser.parse_args(argv)
    try:
        built = build(args.dist)
        print(f"built {built.sdist.name} and {built.wheel.name} in {args.dist}")
        twine_check(built)
        print("twine check --strict: passed")
        problems = wheel_problems(built.wheel) + sdist_problems(built.sdist)
        if problems:
            raise PackageError("\n".join(problems))
        print(f"{len(_expected())} files of schemas/, fixtures/ and the packages are in both")
        with tempfile.TemporaryDirectory(prefix="pivotkit-wheel-") as tmp:
            installed = fresh_venv(Path(tmp) / "venv", built.wheel)
            status, body = serve_check(installed, Path(tmp))
        if status != 200:
            raise PackageError(f"GET {installed.path} answered {status}: {body[:300]!r}")
        print(
            f"the wheel in a fresh venv: pivotkit serve answers {installed.path} 200 "
            f"with the {installed.account!r} key of its bundled accounts.toml"
        )
    except PackageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
