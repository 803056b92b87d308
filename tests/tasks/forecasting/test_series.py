"""Reading series: frequency inference, and clear errors for gaps, duplicates and stray stamps."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from shipyard.datasets.bike_sharing import load_bike_sharing_daily
from shipyard.errors import DataError
from shipyard.tasks.forecasting.series import build_series, season_length_for


@pytest.fixture(scope="module")
def daily() -> pd.DataFrame:
    return load_bike_sharing_daily()


def test_the_bundled_daily_counts_match_the_published_day_table(daily: pd.DataFrame):
    assert len(daily) == 731
    assert daily["cnt"].sum() == 3_292_679  # the total of UCI's day.csv
    assert daily["cnt"].iloc[0] == 985


def test_the_frequency_and_season_are_inferred(daily: pd.DataFrame):
    series, frequency = build_series(daily, time="dteday", target="cnt")
    assert frequency == "D"
    assert season_length_for(frequency) == 7
    assert len(series) == 1
    assert len(series[0].values) == 731


def test_monthly_stamps_get_a_calendar_frequency():
    stamps = pd.date_range("1949-01-01", periods=48, freq="MS")
    frame = pd.DataFrame({"month": stamps, "passengers": np.arange(48.0)})
    _, frequency = build_series(frame, time="month", target="passengers")
    assert frequency == "MS"
    assert season_length_for(frequency) == 12


def test_a_gap_is_refused_with_the_missing_stamp(daily: pd.DataFrame):
    with pytest.raises(DataError, match=r"1 gaps.*2011-01-05.*forecasting\.fill"):
        build_series(daily.drop(index=4), time="dteday", target="cnt")


def test_a_gap_is_filled_when_the_config_says_how(daily: pd.DataFrame):
    series, _ = build_series(daily.drop(index=4), time="dteday", target="cnt", fill="interpolate")
    values = series[0].values
    assert series[0].filled == 1
    assert values[4] == pytest.approx((daily["cnt"][3] + daily["cnt"][5]) / 2)


def test_duplicate_stamps_are_refused(daily: pd.DataFrame):
    doubled = pd.concat([daily, daily.iloc[[10]]], ignore_index=True)
    with pytest.raises(DataError, match=r"duplicate stamps.*2011-01-11.*aggregate"):
        build_series(doubled, time="dteday", target="cnt")


def test_irregular_stamps_are_refused(daily: pd.DataFrame):
    shifted = daily.assign(dteday=pd.to_datetime(daily["dteday"]))
    shifted.loc[20, "dteday"] += pd.Timedelta(hours=6)
    with pytest.raises(DataError, match="off its D grid"):
        build_series(shifted, time="dteday", target="cnt")


def test_many_series_are_split_by_their_id(daily: pd.DataFrame):
    two = pd.concat(
        [daily.assign(store="a"), daily.assign(store="b", cnt=daily["cnt"] * 2)],
        ignore_index=True,
    )
    series, _ = build_series(two, time="dteday", target="cnt", series="store")
    assert [item.id for item in series] == ["a", "b"]
    assert series[1].values[0] == 2 * series[0].values[0]


def test_a_missing_column_is_named(daily: pd.DataFrame):
    with pytest.raises(DataError, match="no column 'date'"):
        build_series(daily, time="date", target="cnt")
