from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shipyard.config import RegistryConfig
from shipyard.errors import ModelNotFoundError, RegistryError
from shipyard.monitoring.log import MonitoringStore
from shipyard.registry import store
from shipyard.registry.bundle import MANIFEST, verify_bundle
from shipyard.registry.store import (
    DEFAULT_ALIAS,
    Registry,
    create_private_sqlite_file,
    parse_reference,
)

POSTGRES_URL = os.environ.get("SHIPYARD_TEST_POSTGRES_URL")

FILES = {
    "model.linear.json": b'{"coefficients": [[1.0]], "intercepts": [0.0]}',
    "contract.yaml": b"version: 1\n",
}
MANIFEST_FIELDS = {"task": "binary", "metrics": {"test": {"roc_auc": {"value": 0.9}}}}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    elif POSTGRES_URL is None:
        pytest.skip(
            "set SHIPYARD_TEST_POSTGRES_URL (e.g. "
            "postgresql+psycopg://postgres@127.0.0.1:5432/test) to run PostgreSQL tests"
        )
    else:
        url = POSTGRES_URL
    registry = Registry(url, tmp_path / "artifacts")
    yield registry
    registry.close()


@pytest.fixture
def name() -> str:
    """A model name no earlier run used (the PostgreSQL database outlives the test)."""
    return f"model-{uuid.uuid4().hex[:12]}"


def register(registry: Registry, name: str, **kwargs: Any) -> Any:
    return registry.register(name, FILES, MANIFEST_FIELDS, **kwargs)


def test_register_and_get(registry: Registry, name: str) -> None:
    version = register(
        registry,
        name,
        params={"family": "linear"},
        config="name: x\n",
        data_fingerprint="ab" * 32,
        package_versions={"numpy": "2.0"},
    )
    assert version.reference == f"{name}:1"
    assert version.version == 1
    assert version.task == "binary"
    assert version.metrics == MANIFEST_FIELDS["metrics"]
    assert version.params == {"family": "linear"}
    assert version.config == "name: x\n"
    assert version.package_versions == {"numpy": "2.0"}
    assert version.aliases == ()
    assert version.created_at.tzinfo is not None
    assert abs((datetime.now(UTC) - version.created_at).total_seconds()) < 60
    assert version.bundle_path == registry.artifacts / name / "v1"
    manifest = verify_bundle(version.bundle_path, version.manifest_sha256)
    assert (manifest["name"], manifest["version"]) == (name, 1)
    assert registry.get(name, 1) == version
    assert registry.verify(f"{name}:1") == manifest
    assert registry.manifest(f"{name}:1") == manifest
    assert version.as_dict()["reference"] == f"{name}:1"


def test_versions_increase_and_record_their_parent(registry: Registry, name: str) -> None:
    first = register(registry, name)
    second = register(registry, name, parent_version=first.version)
    third = register(registry, name, parent_version=second.version)
    assert [v.version for v in registry.versions(name)] == [1, 2, 3]
    assert third.parent_version == 2
    assert len({v.bundle_path for v in registry.versions(name)}) == 3


def test_resolve_by_name_alias_and_version(registry: Registry, name: str) -> None:
    register(registry, name)
    register(registry, name)
    with pytest.raises(ModelNotFoundError, match=f"Model '{name}' has no alias 'champion'"):
        registry.resolve(name)
    registry.promote(name, 1, reason="first")
    registry.promote(name, 2, alias="staging")
    assert registry.resolve(name).version == 1
    assert registry.resolve(f"{name}@champion").version == 1
    assert registry.resolve(f"{name}@staging").version == 2
    assert registry.resolve(f"{name}:2").version == 2
    assert registry.get(name, 1).aliases == (DEFAULT_ALIAS,)
    with pytest.raises(ModelNotFoundError, match="no version 7; versions: 1, 2"):
        registry.resolve(f"{name}:7")


def test_promote_moves_the_alias_and_logs_every_move(registry: Registry, name: str) -> None:
    register(registry, name)
    register(registry, name)
    promoted = registry.promote(name, 1)
    assert promoted.aliases == ("champion",)
    moved = registry.promote(name, 2, reason="better AUC")
    assert moved.aliases == ("champion",)
    assert registry.get(name, 1).aliases == ()
    assert [(v.version, v.aliases) for v in registry.versions(name)] == [
        (1, ()),
        (2, ("champion",)),
    ]
    events = registry.events(name)
    assert [(e["action"], e["version"]) for e in events] == [
        ("register", 1),
        ("register", 2),
        ("promote", 1),
        ("promote", 2),
    ]
    assert events[-1]["detail"] == {"alias": "champion", "previous": 1, "reason": "better AUC"}
    assert events[0]["detail"]["manifest_sha256"] == registry.get(name, 1).manifest_sha256
    with pytest.raises(ModelNotFoundError):
        registry.promote(name, 9)


def test_models_summarises_each_model(registry: Registry, name: str) -> None:
    other = f"{name}-other"
    register(registry, name)
    register(registry, name)
    registry.promote(name, 2)
    register(registry, other)
    summaries = {row["name"]: row for row in registry.models()}
    assert summaries[name]["versions"] == 2
    assert summaries[name]["latest"] == 2
    assert summaries[name]["aliases"] == {"champion": 2}
    assert summaries[other]["versions"] == 1


def test_unknown_model_suggests_the_nearest_name(registry: Registry, name: str) -> None:
    register(registry, name)
    typo = name[:-1]
    for call in (
        lambda: registry.resolve(typo),
        lambda: registry.versions(typo),
        lambda: registry.get(typo, 1),
        lambda: registry.resolve(f"{typo}@champion"),
    ):
        with pytest.raises(ModelNotFoundError, match=f"Did you mean '{name}'"):
            call()


def test_empty_registry_says_how_to_fill_it(tmp_path: Path) -> None:
    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}", tmp_path / "artifacts")
    with pytest.raises(ModelNotFoundError, match="The registry is empty"):
        registry.resolve("adult")
    assert registry.models() == []
    assert isinstance(ModelNotFoundError("x"), LookupError)


@pytest.mark.parametrize("bad", ["", "bad name!", "-leading", "x" * 101, "a/b"])
def test_invalid_model_names_are_refused(registry: Registry, bad: str) -> None:
    with pytest.raises(RegistryError, match="is not a valid model name"):
        register(registry, bad)


@pytest.mark.parametrize(
    ("reference", "parts"),
    [
        ("adult", ("adult", None, None)),
        ("adult@champion", ("adult", "champion", None)),
        ("adult:3", ("adult", None, 3)),
        ("  adult:12 ", ("adult", None, 12)),
    ],
)
def test_parse_reference(reference: str, parts: tuple[Any, ...]) -> None:
    assert parse_reference(reference) == parts


@pytest.mark.parametrize(
    "reference",
    ["", "adult:", "adult@", "adult:x", "adult:1:2", "adult@a@b", "@champion", "adult@cham pion"],
)
def test_parse_reference_errors(reference: str) -> None:
    with pytest.raises(RegistryError, match="is not a model reference; write NAME"):
        parse_reference(reference)


def test_failed_register_leaves_no_row_and_no_files(
    registry: Registry, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write_bundle = store.write_bundle

    def write_then_fail(directory: Path, *args: Any) -> str:
        real_write_bundle(directory, *args)  # the files exist when the failure comes
        raise OSError("disk full")

    monkeypatch.setattr(store, "write_bundle", write_then_fail)
    with pytest.raises(OSError, match="disk full"):
        register(registry, name)
    with pytest.raises(ModelNotFoundError):
        registry.versions(name)
    assert registry.events(name) == []
    assert [p for p in registry.artifacts.rglob("*") if p.is_file()] == []

    monkeypatch.undo()
    assert register(registry, name).version == 1  # the failure did not use up a number


def test_failed_commit_removes_the_moved_bundle(
    registry: Registry, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.orm import SessionTransaction

    register(registry, name)
    real_commit = SessionTransaction.commit

    def fail_once_moved(self: SessionTransaction, *args: Any, **kwargs: Any) -> Any:
        # Flushes commit inner transactions too; fail only the final commit, after the move.
        if (registry.artifacts / name / "v2").is_dir():
            raise OSError("lost the connection")
        return real_commit(self, *args, **kwargs)

    monkeypatch.setattr(SessionTransaction, "commit", fail_once_moved)
    with pytest.raises(OSError, match="lost the connection"):
        register(registry, name)
    monkeypatch.undo()
    assert [v.version for v in registry.versions(name)] == [1]
    assert sorted(p.name for p in (registry.artifacts / name).iterdir()) == ["v1"]


def test_stray_bundle_folder_blocks_registration(registry: Registry, name: str) -> None:
    (registry.artifacts / name / "v1").mkdir(parents=True)
    with pytest.raises(RegistryError, match="already exists but the registry has no"):
        register(registry, name)


def test_load_predictor_checks_the_manifest_hash(registry: Registry, name: str) -> None:
    version = register(registry, name)
    (version.bundle_path / MANIFEST).write_bytes(
        (version.bundle_path / MANIFEST).read_bytes() + b" "
    )
    with pytest.raises(RegistryError, match="the registry recorded"):
        registry.load_predictor(version.reference)


def test_from_config_uses_home(tmp_path: Path) -> None:
    config = RegistryConfig(home=str(tmp_path / "home"))
    registry = Registry.from_config(config)
    assert registry.url == f"sqlite:///{tmp_path / 'home' / 'registry.db'}"
    assert registry.artifacts == tmp_path / "home" / "artifacts"
    registry.register("adult", FILES, MANIFEST_FIELDS)
    assert (tmp_path / "home" / "registry.db").is_file()
    assert (tmp_path / "home" / "artifacts" / "adult" / "v1" / MANIFEST).is_file()


def test_unreachable_database_is_a_registry_error_without_the_password(tmp_path: Path) -> None:
    url = "postgresql+psycopg://user:secret@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(RegistryError, match="Cannot open the registry database") as caught:
        Registry(url, tmp_path)
    assert "secret" not in str(caught.value)
    assert "user:***@" in str(caught.value)


def test_rollback_restores_the_previous_version_and_logs_it(registry: Registry, name: str) -> None:
    for _ in range(3):
        register(registry, name)
    registry.promote(name, 1)
    with pytest.raises(RegistryError, match="no earlier version to roll back to"):
        registry.rollback(name)
    registry.promote(name, 2)
    registry.promote(name, 3, reason="new data")
    assert registry.rollback(name, reason="error rate up").version == 2
    assert registry.resolve(name).version == 2
    # Rolling back undoes the latest move, so a second rollback restores version 3.
    assert registry.rollback(name).version == 3
    moves = [event for event in registry.events(name) if event["action"] == "rollback"]
    assert [(event["version"], event["detail"]["previous"]) for event in moves] == [(2, 3), (3, 2)]
    assert moves[0]["detail"]["reason"] == "error rate up"
    with pytest.raises(RegistryError, match="no earlier version"):
        registry.rollback(name, alias="staging")


def test_remove_alias_deletes_a_canary_and_logs_it(registry: Registry, name: str) -> None:
    for _ in range(2):
        register(registry, name)
    registry.promote(name, 1)
    registry.promote(name, 2, "canary")
    assert registry.remove_alias(name, "canary", reason="worse live").version == 2
    with pytest.raises(ModelNotFoundError, match="no alias 'canary'"):
        registry.resolve(f"{name}@canary")
    last = registry.events(name)[-1]
    assert (last["action"], last["version"], last["detail"]["reason"]) == (
        "remove_alias",
        2,
        "worse live",
    )
    with pytest.raises(RegistryError, match="cannot be removed"):
        registry.remove_alias(name, DEFAULT_ALIAS)
    # Promoting a canary again starts from nothing: no previous version to roll back to.
    registry.promote(name, 2, "canary")
    assert registry.events(name)[-1]["detail"]["previous"] is None


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        registry = Registry(f"sqlite:///{tmp_path / 'home' / 'registry.db'}", tmp_path / "art")
        store = MonitoringStore(f"sqlite:///{tmp_path / 'logs.db'}")
    finally:
        os.umask(old_umask)
    registry.register("m", FILES, MANIFEST_FIELDS)
    store.close()
    databases = sorted(tmp_path.rglob("*.db*"))  # with SQLite's journal or WAL files, if any
    assert {path.name for path in databases} >= {"registry.db", "logs.db"}
    for path in databases:
        assert path.stat().st_mode & 0o777 == 0o600, path


def test_private_file_creation_leaves_other_databases_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"")
    existing.chmod(0o640)
    for url in (
        "postgresql+psycopg://postgres@127.0.0.1:5432/test",
        "sqlite://",
        "sqlite:///:memory:",
        f"sqlite:///{existing}",
    ):
        create_private_sqlite_file(url)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["existing.db"]
    assert existing.stat().st_mode & 0o777 == 0o640


def test_first_registrations_at_once_make_exactly_one_champion(
    registry: Registry, name: str
) -> None:
    # Four first trainings of a new model finish at the same moment: each registers with the
    # latest version as its parent and claims `champion` only if it saw no earlier version.
    import threading

    start = threading.Barrier(4)
    outcomes: list[tuple[int, int | None, bool]] = []
    errors: list[BaseException] = []

    def first_training() -> None:
        try:
            own = Registry(registry.url, registry.artifacts)
            start.wait(timeout=60)
            version = own.register(name, FILES, MANIFEST_FIELDS, parent_version="latest")
            claimed = False
            if version.parent_version is None:
                claimed = own.claim(name, version.version, reason="first") is not None
            outcomes.append((version.version, version.parent_version, claimed))
            own.close()
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=first_training) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert sorted(outcomes) == [(1, None, True), (2, 1, False), (3, 2, False), (4, 3, False)]
    assert registry.resolve(name).version == 1
    promotions = [event for event in registry.events(name) if event["action"] == "promote"]
    assert len(promotions) == 1


def test_claim_never_moves_an_alias_that_is_held(registry: Registry, name: str) -> None:
    register(registry, name)
    register(registry, name)
    assert registry.claim(name, 1, reason="first") is not None
    assert registry.claim(name, 2, reason="second") is None
    assert registry.resolve(name).version == 1
    # Many claims racing for a fresh alias: exactly one wins.
    import threading

    start = threading.Barrier(6)
    won: list[int] = []

    def claim(version: int) -> None:
        own = Registry(registry.url, registry.artifacts)
        start.wait(timeout=60)
        if own.claim(name, version, alias="staging") is not None:
            won.append(version)
        own.close()

    threads = [threading.Thread(target=claim, args=(1 + index % 2,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(won) == 1
    assert registry.resolve(f"{name}@staging").version == won[0]
