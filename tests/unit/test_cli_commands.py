"""The lazy table of commands (``COMMANDS``) cannot drift from the commands it loads.

``spreports --help`` shows the table without importing any command; these tests load every command
and hold the table to them: the same commands, and each short help the command's own.
"""

from __future__ import annotations

import importlib
import pkgutil

import click
import pytest

import spreports.workers.cli as cli
from spreports.workers.cli import COMMANDS, main


def defined_commands() -> dict[str, click.Command]:
    """``module:attribute`` -> every top-level click command defined in the command line's modules.

    Top-level: not a subcommand of a group (``redis start`` belongs to ``redis``).
    """
    found: dict[str, click.Command] = {}
    for info in pkgutil.iter_modules(cli.__path__):
        if info.name.startswith("_"):
            continue  # __main__ runs the command line when imported
        module = importlib.import_module(f"{cli.__name__}.{info.name}")
        for attribute, value in vars(module).items():
            if isinstance(value, click.Command) and getattr(value.callback, "__module__", None) == module.__name__:
                found[f"{info.name}:{attribute}"] = value
    held = {
        id(sub) for command in found.values() if isinstance(command, click.Group) for sub in command.commands.values()
    }
    return {target: command for target, command in found.items() if id(command) not in held}


# Loaded at collection: importing urllib3 (under boto3 and requests) probes IPv6 with a socket, which the
# unit tier's guard refuses inside a test.
DEFINED = defined_commands()


def loaded(name: str) -> click.Command:
    command = main.get_command(click.Context(main), name)
    assert command is not None, f"spreports {name} does not load"
    return command


def test_the_table_lists_every_command_and_nothing_else() -> None:
    defined = DEFINED
    assert sorted(target for target, _ in COMMANDS.values()) == sorted(defined)
    assert main.list_commands(click.Context(main)) == list(COMMANDS)
    for name, (target, _) in COMMANDS.items():
        assert loaded(name) is defined[target]
        # The name typed is the command's own name (its usage line and errors say it).
        assert loaded(name).name == name


@pytest.mark.parametrize("name", list(COMMANDS))
def test_short_help_is_the_commands_own(name: str) -> None:
    command = loaded(name)
    own = command.short_help or (command.help or "").strip().splitlines()[0]
    assert COMMANDS[name][1] == own


def test_an_unknown_command_is_not_loaded() -> None:
    assert main.get_command(click.Context(main), "nope") is None
