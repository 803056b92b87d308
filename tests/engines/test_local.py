"""The engine seam in process: config, lazy imports, partitioned profiling and validation."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from shipyard import datasets
from shipyard.config import EngineConfig
from shipyard.data.contract import infer_contract
from shipyard.data.profile import profile_table
from shipyard.engines import LocalEngine, open_engine
from shipyard.engines.directory import list_partitions, transform_directory
from shipyard.engines.partitioned import infer_partitioned_contract, validate_partitions
from shipyard.engines.profiling import profile_partitions
from shipyard.errors import ConfigError, DataError, PartitionError


@pytest.fixture(scope="module")
def partitions(adult: datasets.Dataset, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("adult-parts")
    frame = adult.train.head(6000)
    for index in range(4):
        part = frame.iloc[index * 1500 : (index + 1) * 1500].reset_index(drop=True)
        part.to_parquet(folder / f"part-{index}.parquet")
    return list_partitions(folder)


def test_engine_url_names_local_or_a_dask_scheduler() -> None:
    assert EngineConfig().kind == "local"
    engine = EngineConfig(url="dask://10.1.2.3")
    assert (engine.kind, engine.scheduler_address) == ("dask", "tcp://10.1.2.3:8786")
    assert EngineConfig(url="dask://node:9000").scheduler_address == "tcp://node:9000"
    with pytest.raises(ValueError, match=r"engine\.url must be 'local' or 'dask://HOST:PORT'"):
        EngineConfig(url="spark://node:7077")
    with pytest.raises(ValueError, match="distributed_training needs a cluster"):
        EngineConfig(distributed_training=True)


def test_the_local_engine_imports_nothing_of_dask(partitions: list[Path], tmp_path: Path) -> None:
    code = f"""
import json, sys
from shipyard.config import EngineConfig
from shipyard.engines import open_engine
from shipyard.engines.directory import transform_directory
with open_engine(EngineConfig()) as engine:
    transform_directory(engine, lambda frame: frame.head(3), {str(partitions[0].parent)!r},
                        {str(tmp_path / "out")!r})
print(json.dumps([name for name in ("dask", "distributed") if name in sys.modules]))
"""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout) == []
    assert len(list((tmp_path / "out").glob("*.parquet"))) == 4


def test_a_failing_partition_is_named_and_nothing_is_written(
    partitions: list[Path], tmp_path: Path
) -> None:
    def fail_on_third(frame: pd.DataFrame) -> pd.DataFrame:
        if frame["age"].iloc[0] == pd.read_parquet(partitions[2])["age"].iloc[0]:
            raise ValueError("no ages here")
        return frame

    output = tmp_path / "scored"
    with pytest.raises(PartitionError, match=r"Partition 2 \('.*part-2.parquet'\) failed") as info:
        transform_directory(LocalEngine(), fail_on_third, partitions[0].parent, output)
    assert info.value.reason == "ValueError: no ages here"
    assert not output.exists()
    assert list(tmp_path.iterdir()) == []  # the staging directory is gone too


def test_an_existing_output_is_refused(partitions: list[Path], tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        transform_directory(LocalEngine(), lambda f: f, partitions[0].parent, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_merged_partition_profiles_equal_the_whole_table_profile(partitions: list[Path]) -> None:
    merged = profile_partitions(LocalEngine(), partitions, target="income")
    whole = profile_table(
        pd.concat([pd.read_parquet(path) for path in partitions], ignore_index=True),
        target="income",
    )
    assert (merged.n_rows, merged.duplicate_rows) == (whole.n_rows, whole.duplicate_rows)
    for ours, theirs in zip(merged.columns, whole.columns, strict=True):
        assert (ours.name, ours.semantic, ours.missing, ours.distinct) == (
            theirs.name,
            theirs.semantic,
            theirs.missing,
            theirs.distinct,
        )
        assert ours.top_values == theirs.top_values
        assert ours.quantiles == theirs.quantiles
        assert ours.association == theirs.association
        if theirs.mean is not None:
            assert ours.mean == pytest.approx(theirs.mean, rel=1e-12)
            assert ours.std == pytest.approx(theirs.std, rel=1e-9)
    assert merged.warnings == whole.warnings


def test_partitioned_contract_and_validation_match_the_whole_table(
    partitions: list[Path], tmp_path: Path
) -> None:
    frames = [pd.read_parquet(path) for path in partitions]
    whole = pd.concat(frames, ignore_index=True)
    contract, _ = infer_partitioned_contract(LocalEngine(), partitions, "income")
    assert contract == infer_contract(whole, "income")
    broken = frames[3].copy()
    broken.loc[7, "workclass"] = "Astronaut"
    broken.to_parquet(tmp_path / "part-3.parquet")
    for path in partitions[:3]:
        (tmp_path / path.name).write_bytes(path.read_bytes())
    report = validate_partitions(LocalEngine(), list_partitions(tmp_path), contract)
    assert report.counts == {"category": 1}
    assert report.violations[0].row == 3 * 1500 + 7  # numbered across all files
    assert report.n_rows == 6000


def test_a_dask_engine_without_a_scheduler_fails_clearly() -> None:
    pytest.importorskip("distributed")
    from shipyard.errors import EngineError

    config = EngineConfig(url="dask://127.0.0.1:9", connect_timeout=1)
    with pytest.raises(EngineError, match=r"Cannot reach the Dask scheduler at tcp://127.0.0.1:9"):
        open_engine(config)


def test_an_unknown_optuna_storage_is_refused() -> None:
    from shipyard.training.studies import open_storage

    with pytest.raises(ConfigError, match="is not a storage"):
        open_storage("studies.db")
