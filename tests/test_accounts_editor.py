"""Tests of pivotkit.accounts_editor and `pivotkit accounts`: an accounts file edited safely."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from werkzeug.security import check_password_hash

from pivotkit.accounts import load_accounts
from pivotkit.accounts_editor import AccountsText
from pivotkit.errors import ConfigError

from .conftest import FIXTURES
from .helpers import CONTRACT, clean_env, key_headers, path_of, pivotkit_command, serve_process

KEY_SHAPE = re.compile(r"\b[0-9a-f]{32}\b")


def _accounts(tmp_path: Path, text: str | None = None, name: str = "accounts.toml") -> Path:
    path = tmp_path / name
    path.write_text(text if text is not None else (FIXTURES / "accounts.toml").read_text("utf-8"))
    path.chmod(0o644)
    return path


def _cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        pivotkit_command("accounts", *args),
        input=stdin,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _printed_keys(stdout: str) -> dict[str, str]:
    lines = stdout.splitlines()
    assert all(re.fullmatch(r"(primary|secondary)_key [0-9a-f]{32}", line) for line in lines)
    return dict(line.split(" ") for line in lines)


def test_add_appends_an_account_the_mock_serves(tmp_path: Path) -> None:
    """`accounts add` appends one [[accounts]] table: the file's text before it is kept
    byte for byte (comments too), its permissions stay, the two new keys are printed once on
    stdout (never on stderr), the password comes from stdin and is only stored hashed, and a
    mock started on the file answers the new key within its rights only."""
    path = _accounts(tmp_path)
    before = path.read_text("utf-8")
    result = _cli(
        "add",
        "partner",
        "--file",
        str(path),
        "--operation",
        "getContent",
        "--withheld",
        "synopsis",
        "--rate-limit",
        "50/10",
        stdin="partner-pass\n",
    )
    assert result.returncode == 0, result.stderr
    keys = _printed_keys(result.stdout)
    assert set(keys) == {"primary_key", "secondary_key"}
    assert not KEY_SHAPE.search(result.stderr)
    assert "partner-pass" not in path.read_text("utf-8") + result.stdout + result.stderr
    after = path.read_text("utf-8")
    assert (
        after.startswith(before) and after.count("[[accounts]]") == before.count("[[accounts]]") + 1
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    partner = load_accounts(path, CONTRACT.operations).account("partner")
    assert (partner.primary_key, partner.secondary_key) == (
        keys["primary_key"],
        keys["secondary_key"],
    )
    assert check_password_hash(partner.password_hash, "partner-pass")
    assert partner.rate_limit is not None and partner.rate_limit.calls == 50
    assert partner.rights.withholds(("synopsis",))

    with serve_process(tmp_path, "--accounts", str(path)) as (url, _, _):
        content = httpx.get(
            url + path_of("getContent", id=7488), headers=key_headers(keys["primary_key"])
        )
        other = httpx.get(url + path_of("listChannels"), headers=key_headers(keys["secondary_key"]))
    assert content.status_code == 200 and "synopsis" not in content.json()["data"]
    assert other.status_code == 401


def test_add_refuses_an_existing_account_unless_forced(tmp_path: Path) -> None:
    """An account of that name: one line, exit 2, file untouched; --force replaces it where
    it stands with new keys, every other account and comment unchanged."""
    path = _accounts(tmp_path)
    before = path.read_text("utf-8")
    refused = _cli("add", "basic", "--file", str(path), "--no-password")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        f"Error: {path}: account 'basic' exists already; --force replaces it (keys included)"
    ]
    assert path.read_text("utf-8") == before

    old = load_accounts(path).account("basic")
    forced = _cli(
        "add", "basic", "--file", str(path), "--force", "--operation", "listDays", stdin="pw\n"
    )
    assert forced.returncode == 0, forced.stderr
    keys = _printed_keys(forced.stdout)
    loaded = load_accounts(path)
    assert [a.name for a in loaded.accounts] == ["full", "basic", "limited"]
    basic = loaded.account("basic")
    assert basic.operations == frozenset({"listDays"}) and not basic.rights.withheld
    assert basic.primary_key == keys["primary_key"] != old.primary_key
    assert basic.secondary_key not in (old.primary_key, old.secondary_key)
    original = load_accounts(FIXTURES / "accounts.toml")
    assert [loaded.account(n) for n in ("full", "limited")] == [
        original.account(n) for n in ("full", "limited")
    ]
    text = path.read_text("utf-8")
    assert text.split("[[accounts]]")[0] == before.split("[[accounts]]")[0]  # the comments
    assert text.split("[[accounts]]")[3] == before.split("[[accounts]]")[3]


def test_new_keys_changes_only_the_key_lines(tmp_path: Path) -> None:
    """`accounts new-keys NAME` rewrites only the key values of NAME (a comment after a value
    stays), prints the new ones once; --slot picks one; an unknown account is refused."""
    source = (FIXTURES / "accounts.toml").read_text("utf-8")
    old_primary = load_accounts(FIXTURES / "accounts.toml").account("limited").primary_key
    source = source.replace(
        f'primary_key = "{old_primary}"', f'primary_key = "{old_primary}"  # rotated yearly'
    )
    path = _accounts(tmp_path, source)
    result = _cli("new-keys", "limited", "--file", str(path))
    assert result.returncode == 0, result.stderr
    keys = _printed_keys(result.stdout)
    changed = [
        (a, b)
        for a, b in zip(source.splitlines(), path.read_text("utf-8").splitlines(), strict=True)
        if a != b
    ]
    assert changed == [
        (
            f'primary_key = "{old_primary}"  # rotated yearly',
            f'primary_key = "{keys["primary_key"]}"  # rotated yearly',
        ),
        (changed[1][0], f'secondary_key = "{keys["secondary_key"]}"'),
    ]
    one = _cli("new-keys", "limited", "--file", str(path), "--slot", "secondary")
    assert list(_printed_keys(one.stdout)) == ["secondary_key"]
    assert load_accounts(path).account("limited").primary_key == keys["primary_key"]
    unknown = _cli("new-keys", "nobody", "--file", str(path))
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "Error: unknown account 'nobody'; known: basic, full, limited"


def test_hash_password_reads_stdin_never_argv(tmp_path: Path) -> None:
    """`accounts hash-password` prints the hash of the password on stdin; with NAME it sets
    NAME's password_hash in the file and prints nothing on stdout; no flag takes a password,
    and an empty one is refused."""
    printed = _cli("hash-password", stdin="my portal pass\n")
    assert printed.returncode == 0 and check_password_hash(printed.stdout.strip(), "my portal pass")
    path = _accounts(tmp_path)
    set_it = _cli("hash-password", "full", "--file", str(path), stdin="changed\n")
    assert set_it.returncode == 0 and set_it.stdout == ""
    assert check_password_hash(load_accounts(path).account("full").password_hash, "changed")
    assert not check_password_hash(load_accounts(path).account("full").password_hash, "full-demo")
    empty = _cli("hash-password", "full", "--file", str(path), stdin="\n")
    assert empty.returncode == 2 and "password: empty" in empty.stderr
    for command in (["hash-password", "--password", "x"], ["add", "a", "--password=x"]):
        result = _cli(*command, "--file", str(path))
        assert result.returncode == 2 and "No such option" in result.stderr


def test_list_never_shows_keys_or_hashes(tmp_path: Path) -> None:
    """`accounts list`: one line per account with its rights and limits, no secret."""
    result = _cli("list", "--file", str(FIXTURES / "accounts.toml"))
    assert result.returncode == 0
    assert [line.split()[0] for line in result.stdout.splitlines()] == ["full", "basic", "limited"]
    assert "rate 5/10 s, quota 30/3600 s" in result.stdout
    assert not KEY_SHAPE.search(result.stdout) and "scrypt" not in result.stdout


def test_a_new_file_is_created_private(tmp_path: Path) -> None:
    """`add` on a missing file creates it (0600: it holds keys) with a header comment; the
    mock's model reads it back."""
    path = tmp_path / "project" / "accounts.toml"
    result = _cli("add", "ci", "--file", str(path), "--no-password")
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text("utf-8").startswith("# Accounts of the pivotkit mock")
    [account] = load_accounts(path).accounts
    assert account.name == "ci" and account.password_hash == "" and account.operations is None


INLINE = (
    f"accounts = [{{ name = 'a', primary_key = '{'a' * 32}', secondary_key = '{'b' * 32}' }}]\n"
)


@pytest.mark.parametrize(
    ("args", "text", "message"),
    [
        (["add", "x", "--operation", "getNothing"], None, "unknown getNothing"),
        (["add", "bad name!"], None, "name: must be 1-64 characters"),
        (["add", "x", "--rate-limit", "5 per 10"], None, "'5 per 10' is not CALLS/SECONDS"),
        (["add", "x"], INLINE, "cannot edit this file in place safely"),
        (["new-keys", "a"], INLINE, "cannot edit this file in place safely"),
        (["new-keys", "full"], "[[accounts]\nname = 'full'\n", "invalid TOML"),
    ],
)
def test_bad_input_changes_nothing(
    tmp_path: Path, args: list[str], text: str | None, message: str
) -> None:
    """An unknown operation, a bad name or limit, a file the editor cannot edit in place, a
    broken file: one line naming the problem, exit 2, the file as it was, no key printed."""
    path = _accounts(tmp_path, text)
    before = path.read_bytes()
    result = _cli(*args, "--file", str(path), *(["--no-password"] if args[0] == "add" else []))
    assert result.returncode == 2, result.stderr
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1
    assert message in result.stderr
    assert path.read_bytes() == before


def test_never_writes_into_the_package(tmp_path: Path) -> None:
    """An accounts file inside the pivotkit package (its bundled data) is refused."""
    import pivotkit

    inside = Path(pivotkit.__file__).resolve().parent / "_bundled" / "fixtures" / "accounts.toml"
    result = _cli("add", "x", "--file", str(inside), "--no-password")
    assert result.returncode == 2 and "inside the installed pivotkit package" in result.stderr
    assert not inside.exists()


def test_a_json_accounts_file_is_edited_too(tmp_path: Path) -> None:
    """A JSON accounts file (no comments to keep) is rewritten from its content."""
    data = {"accounts": [{"name": "one", "primary_key": "a" * 32, "secondary_key": "b" * 32}]}
    path = _accounts(tmp_path, json.dumps(data), "accounts.json")
    result = _cli("new-keys", "one", "--file", str(path), "--slot", "primary")
    assert result.returncode == 0, result.stderr
    keys = _printed_keys(result.stdout)
    assert json.loads(path.read_text("utf-8"))["accounts"][0] == {
        "name": "one",
        "primary_key": keys["primary_key"],
        "secondary_key": "b" * 32,
    }


def test_a_file_changed_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    """Another writer between reading and saving: the edit is refused, theirs is kept."""
    path = _accounts(tmp_path)
    edited = AccountsText.open(path, CONTRACT.operations)
    edited.set("full", {"primary_key": "c" * 32})
    theirs = path.read_text("utf-8") + "\n# edited by hand\n"
    path.write_text(theirs)
    with pytest.raises(ConfigError, match="changed while it was edited"):
        edited.save()
    assert path.read_text("utf-8") == theirs
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
