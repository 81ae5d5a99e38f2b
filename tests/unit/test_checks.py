"""The parts of ``spreports check`` and of the embedded Redis's start that only look at the file system:
they say whether something could be created without creating it."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from spreports.errors import StorageError
from spreports.schedules import load_schedules_file
from spreports.settings import Settings
from spreports.workers.cli import checks
from spreports.workers.cli.common import _top_command
from spreports.workers.embedded_redis import EmbeddedRedis


def test_a_storage_folder_that_does_not_exist_is_checked_without_being_created(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "reports"
    detail = checks.storage(Settings(storage={"url": str(root)}))
    assert detail == f"{root} does not exist yet; {tmp_path} is writable, so the first document creates it"
    assert list(tmp_path.iterdir()) == []


def test_an_existing_storage_folder_gets_a_probe_that_is_removed(tmp_path: Path) -> None:
    assert checks.storage(Settings(storage={"url": str(tmp_path)})) == f"{tmp_path} is writable"
    assert list(tmp_path.iterdir()) == []


def test_a_storage_folder_under_a_file_fails(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("in the way")
    with pytest.raises(StorageError, match="is not a writable directory"):
        checks.storage(Settings(storage={"url": str(tmp_path / "file" / "reports")}))


def test_the_embedded_redis_says_whether_it_could_start_without_creating_anything(tmp_path: Path) -> None:
    assert EmbeddedRedis(tmp_path / "x" / ".spreports").startable() is None
    (tmp_path / "file").write_text("in the way")
    reason = EmbeddedRedis(tmp_path / "file" / ".spreports").startable()
    assert reason is not None and reason.startswith("SPREPORTS_DATA_DIR: cannot create")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_the_schedules_check_reads_the_file(tmp_path: Path) -> None:
    path = tmp_path / "schedules.toml"
    path.write_text('[[schedules]]\nreport_type = "GET_MERCHANT_LISTINGS_ALL_DATA"\nmarketplace_ids = ["ATVPDKIKX0DER"]\n'
                    'period = "P1D"\n')  # fmt: skip
    assert len(load_schedules_file(path).schedules) == 1
    assert checks.schedules(Settings(schedules_file=path)).endswith("1 schedule(s), 0 periodic request(s)")
    assert checks.run("schedules", lambda: checks.schedules(Settings(schedules_file=tmp_path / "none"))).ok is False


def test_credentials_without_a_client_or_a_seller_fail_without_a_call() -> None:
    [(name, call)] = checks.credential_checks(Settings())
    outcome = checks.run(name, call)
    assert (outcome.ok, outcome.line()) == (False, f"FAIL  credentials: {outcome.detail}")
    assert "SPREPORTS_LWA__CLIENT_ID" in outcome.detail
    [(name, call)] = checks.credential_checks(Settings(lwa={"client_id": "c", "client_secret": "s"}))
    assert "no seller" in checks.run(name, call).detail


@pytest.mark.parametrize(
    ("argv", "top"), [(["reports", "download"], "reports"), (["worker"], "worker"), (["check"], "check")]
)
def test_the_running_command_is_named_by_its_first_word(argv: list[str], top: str) -> None:
    seen: list[str | None] = []

    @click.group()
    def main() -> None:
        pass

    @click.command()
    def leaf() -> None:
        seen.append(_top_command(click.get_current_context()))

    parent: click.Group = main
    for word in argv[:-1]:
        group = click.Group(word)
        parent.add_command(group)
        parent = group
    parent.add_command(leaf, argv[-1])
    main(argv, standalone_mode=False)
    assert seen == [top]
