"""The README stays honest: every command is in its command table, every gigo-mail.toml key
is in its example (with the defaults the code has), and the example loads."""

from __future__ import annotations

import re
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
import typer

import gigo_mail
from gigo_mail.cli.app import app
from gigo_mail.config import CONFIG_NAME, SECTIONS, Smtp, known_keys, load_config

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _command_paths(group: Any, prefix: str = "") -> list[str]:
    """Every command's name, a group's as 'group sub'; read from the app, so a new one is caught."""
    paths = []
    names = group.list_commands(None) if hasattr(group, "list_commands") else list(group.commands)
    for name, command in sorted((name, group.get_command(None, name)) for name in names):
        if command is None or command.hidden:
            continue
        path = f"{prefix}{name}"
        if hasattr(command, "commands"):
            paths += _command_paths(command, f"{path} ")
        else:
            paths.append(path)
    return paths


COMMANDS = _command_paths(typer.main.get_command(app))


def _section(title: str) -> str:
    start = README.index(f"\n{title}\n")
    end = README.find("\n## ", start + len(title) + 2)
    return README[start:end if end != -1 else len(README)]


def _toml_example() -> str:
    match = re.search(r"```toml\n(.*?)```", _section("### gigo-mail.toml"), re.S)
    assert match, "the README's gigo-mail.toml section has no ```toml example"
    return match.group(1)


def _documented_keys(example: str) -> dict[str, set[str]]:
    """Keys by section, commented-out ones included (a secret is shown, not set)."""
    keys: dict[str, set[str]] = {"": set()}
    section = ""
    for line in example.splitlines():
        if header := re.match(r"\s*\[([\w.]+)\]", line):
            section, _, sub = header.group(1).partition(".")
            keys.setdefault(section, set())
            if sub:
                keys[section].add(sub)
        elif key := re.match(r"\s*#?\s*(\w+)\s*=", line):
            keys[section].add(key.group(1))
    return keys


def test_the_commands_are_found() -> None:
    assert {"send", "build", "subscribers check"} <= set(COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_in_the_readme_command_table(command: str) -> None:
    table = [line for line in _section("## Commands").splitlines() if line.startswith("|")]
    assert any(f"`gigo-mail {command}" in line for line in table), \
        f"'gigo-mail {command}' is missing from the README's command table"


@pytest.mark.parametrize(("section", "key"), [(section, key) for section, keys in known_keys().items()
                                              for key in keys])
def test_every_config_key_is_in_the_readme_example(section: str, key: str) -> None:
    where = f"[{section}]" if section else "top level"
    assert key in _documented_keys(_toml_example()).get(section, set()), \
        f"{CONFIG_NAME} key '{key}' ({where}) is not in the README's example"


def test_the_readme_example_loads_and_shows_the_smtp_defaults(tmp_path: Path) -> None:
    example = _toml_example()
    (tmp_path / CONFIG_NAME).write_text(example, encoding="utf-8")
    config = load_config(tmp_path)  # an unknown key or section would be a ConfigError
    assert config.smtp == Smtp()  # the example shows the defaults the code has
    assert set(tomllib.loads(example)) <= set(SECTIONS)
    assert {f.name for f in fields(Smtp)} == set(known_keys()["smtp"])


def test_what_the_readme_imports_from_the_package_exists() -> None:
    names = set(re.findall(r"\bgigo_mail\.(\w+)\(", README))
    assert "make_app" in names
    for name in names:
        assert name in gigo_mail.__all__, f"the README calls gigo_mail.{name}, not exported"
