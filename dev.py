#!/usr/bin/env python3
"""The README's two commands: ``python3 dev.py serve [ARGS]`` and ``python3 dev.py test [ARGS]``.

Each makes the virtual environment ``.venv`` the first time (``$PIVOTKIT_VENV`` names another),
installs this checkout into it in editable mode (with the ``test`` extras for ``test``), then
becomes ``pivotkit serve ARGS`` or ``pytest ARGS`` run from it. The system Python is never
installed into (Debian refuses that: externally-managed-environment), and a Debian ``python3``
without its ``python3-venv`` package works too: pip is then brought into the new environment by
the system's own pip (``python3-pip``). Only the standard library; Python 3.11 or newer.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
MIN_PYTHON = (3, 11)
COMMANDS = {
    "serve": (
        ("server",),
        "the mock on http://127.0.0.1:8080 with the bundled fixtures (pivotkit serve)",
    ),
    "test": (("server", "test"), "every test of the checkout (pytest; arguments go to pytest)"),
}
_STAMP = ".pivotkit-dev.json"


def _say(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr, flush=True)


def venv_dir() -> Path:
    """Where the environment lives: ``$PIVOTKIT_VENV``, else ``.venv`` of the checkout."""
    return Path(os.environ.get("PIVOTKIT_VENV") or ROOT / ".venv").absolute()


def _bin(env: Path, name: str) -> Path:
    if os.name == "nt":
        return env / "Scripts" / (f"{name}.exe" if name != "python" else "python.exe")
    return env / "bin" / name


def bootstrap_pip(env: Path) -> None:
    """Put pip into an environment made without it, using the pip of the Python running this
    (Debian's python3-pip when its ensurepip is missing); nothing is installed outside ``env``."""
    try:
        import pip
    except ImportError:
        raise SystemExit(
            "dev.py: error: this Python has neither ensurepip nor pip; install pip "
            "(Debian: sudo apt-get install python3-pip) and run again"
        ) from None
    _say("no ensurepip here (Debian without python3-venv): bootstrapping pip from the system's")
    where = str(Path(pip.__file__).resolve().parent.parent)
    child = {**os.environ, "PYTHONPATH": where, "PIP_REQUIRE_VIRTUALENV": "0"}
    subprocess.run(
        [str(_bin(env, "python")), "-m", "pip", "install", "-q", "--ignore-installed", "pip"],
        env=child,
        check=True,
    )


def make_venv(env: Path) -> None:
    """A new virtual environment with pip at ``env`` (``python3 -m venv``)."""
    _say(f"creating {env}")
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(env)
    except subprocess.CalledProcessError:  # ensurepip failed or is disabled (Debian)
        venv.EnvBuilder(with_pip=False, clear=True).create(env)
        bootstrap_pip(env)


def _fingerprint() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure(env: Path, extras: Sequence[str]) -> None:
    """The environment exists and holds this checkout (editable) with ``extras``; installs
    only what changed since the last run (pyproject.toml, or extras not installed yet)."""
    stamp = env / _STAMP
    have: dict[str, Any] = {}
    if _bin(env, "python").exists() and stamp.is_file():
        have = json.loads(stamp.read_text(encoding="utf-8"))
    elif not _bin(env, "python").exists():
        make_venv(env)
    installed = set(have.get("extras", [])) if have.get("pyproject") == _fingerprint() else None
    if installed is not None and set(extras) <= installed:
        return
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    _say(f"installing pivotkit{target[1:]} into {env} (editable; the first time takes a while)")
    subprocess.run(
        [str(_bin(env, "python")), "-m", "pip", "install", "-q", "-e", target],
        cwd=ROOT,
        check=True,
    )
    done = sorted(set(extras) | (installed or set()))
    stamp.write_text(json.dumps({"pyproject": _fingerprint(), "extras": done}), encoding="utf-8")


def _child_env(env: Path) -> dict[str, str]:
    """This environment, as if ``env`` were activated."""
    out = {k: v for k, v in os.environ.items() if k != "PYTHONHOME"}
    out["VIRTUAL_ENV"] = str(env)
    out["PATH"] = str(_bin(env, "python").parent) + os.pathsep + out.get("PATH", "")
    return out


def _become(command: list[str], env: Path) -> int:
    """Run ``command`` in place of this process (same pid: stopping it stops the command)."""
    os.chdir(ROOT)
    if os.name != "nt":
        os.execve(command[0], command, _child_env(env))
    return subprocess.call(command, env=_child_env(env))  # pragma: no cover (Windows)


def _usage() -> str:
    lines = ["usage: python3 dev.py COMMAND [ARGS]", ""]
    lines += [f"  {name:<6} {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", f"The environment is {venv_dir()} ($PIVOTKIT_VENV names another)."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Make or update the environment, then run the command from it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(_usage())
        return 0 if args else 2
    if sys.version_info < MIN_PYTHON:
        need = ".".join(map(str, MIN_PYTHON))
        print(
            f"dev.py: error: pivotkit needs Python {need}+, this is {sys.version.split()[0]}",
            file=sys.stderr,
        )
        return 2
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"dev.py: error: no command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    env = venv_dir()
    try:
        ensure(env, COMMANDS[name][0])
    except subprocess.CalledProcessError as exc:
        command = " ".join(map(str, exc.cmd))
        print(f"dev.py: error: {command} failed ({exc.returncode})", file=sys.stderr)
        return 1
    if name == "serve":
        return _become([str(_bin(env, "pivotkit")), "serve", *rest], env)
    return _become([str(_bin(env, "python")), "-m", "pytest", *rest], env)


if __name__ == "__main__":
    sys.exit(main())
