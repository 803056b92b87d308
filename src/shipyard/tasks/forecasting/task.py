"""The forecasting task: a table of time series in, forecasts with intervals out.

``read`` reads the table; ``contract`` builds one checked series per id on a regular grid
(:mod:`~shipyard.tasks.forecasting.series`); ``fit`` backtests the candidate families on
rolling origins, chooses one by mean MASE, refits it and exports it as JSON parameters
(:mod:`~shipyard.tasks.forecasting.training`); ``evaluate`` reports the backtest with
intervals, the verdict against the seasonal naive baseline and the conformal intervals'
coverage. The served route is ``POST /v1/models/{name}/forecast``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from shipyard.errors import ConfigError
from shipyard.tasks.base import (
    TABLE_ONLY_KEYS,
    Capabilities,
    EvaluatedModel,
    FittedModel,
    PreparedData,
    RetrainSteps,
    RunContext,
    SplitData,
    Task,
)

if TYPE_CHECKING:
    from shipyard.config import ForecastingConfig, PipelineConfig
    from shipyard.evaluation.report import DocumentSections
    from shipyard.manifest import Manifest
    from shipyard.monitoring.adapters import TaskMonitoring

__all__ = ["ForecastingTask"]


def forecasting_settings(config: PipelineConfig) -> ForecastingConfig:
    """Return the config's ``forecasting`` section, or an error saying how to add it."""
    if config.forecasting is None:
        raise ConfigError(
            "task is 'forecasting' but the 'forecasting' section is missing; add it with at "
            "least 'time' (the timestamp column) (see docs/forecasting.md)"
        )
    return config.forecasting


class ForecastingTask(Task):
    """Forecasts of one or many time series, backtested, with conformal intervals."""

    name = "forecasting"
    summary = "future values of time series (seasonal naive, drift, AutoETS, LightGBM lags)"
    capabilities = Capabilities(
        config_tasks=("forecasting",),
        manifest_tasks=("forecasting",),
        unsupported_keys=(*TABLE_ONLY_KEYS, "serving.canary", "serving.shadow"),
        live_metrics=False,
        traffic_split=False,
        feedback_unit="actuals",
        protocols=("forecast",),
    )

    def small_config(self, folder: Path) -> dict[str, Any]:
        """Return the bike sharing daily counts of 2012, backtested on 3 windows of 7 days."""
        from shipyard.datasets.bike_sharing import load_bike_sharing_daily

        daily = load_bike_sharing_daily()
        daily.tail(240).reset_index(drop=True).to_csv(folder / "daily.csv", index=False)
        return {
            "name": "bikes",
            "task": "forecasting",
            "data": {"source": str(folder / "daily.csv"), "target": "cnt"},
            "forecasting": {
                "time": "dteday",
                "horizon": 7,
                "windows": 3,
                "covariates": ["workingday"],
                "models": ["seasonal_naive", "drift", "lightgbm"],
                "lightgbm_rounds": 30,
            },
            "evaluation": {"bootstrap_samples": 100, "report": False},
        }

    def check_config(self, config: PipelineConfig) -> None:
        """Refuse unsupported keys, and a config without its ``forecasting`` section."""
        super().check_config(config)
        forecasting_settings(config)

    # Training ---------------------------------------------------------------------------------

    def read(self, config: PipelineConfig, context: RunContext) -> PreparedData:
        """Read the table of series."""
        from shipyard.data.sources import ReadOptions, fingerprint, read_table

        context.report(f"reading {config.data.source}")
        frame = read_table(
            config.data.source, ReadOptions(config.data.encoding, config.data.header)
        )
        return PreparedData(frame, fingerprint=fingerprint(frame))

    def contract(
        self, data: PreparedData, config: PipelineConfig, context: RunContext
    ) -> PreparedData:
        """Build the series on one checked grid (gaps, duplicates and stray stamps refused)."""
        from shipyard.tasks.forecasting.series import build_series, season_length_for

        settings = forecasting_settings(config)
        series, frequency = build_series(
            data.frame,
            time=settings.time,
            target=config.data.target_column,
            series=settings.series,
            covariates=settings.covariates,
            frequency=settings.frequency,
            fill=settings.fill,
        )
        season = settings.season_length or season_length_for(frequency)
        context.report(f"{len(series)} series at frequency {frequency}, season {season}")
        data.payload.update(series=series, frequency=frequency, season=season)
        data.data_section = {
            "series": len(series),
            "frequency": frequency,
            "season_length": season,
            "first": min(item.stamps[0] for item in series).isoformat(),
            "last": max(item.stamps[-1] for item in series).isoformat(),
            "steps": sum(len(item.values) for item in series),
        }
        return data

    def split(self, data: PreparedData, config: PipelineConfig, context: RunContext) -> SplitData:
        """Hand every step to the fit: the backtest's origins split by time."""
        settings = forecasting_settings(config)
        steps, count = int(data.data_section["steps"]), int(data.data_section["series"])
        backtested = settings.windows * settings.horizon * count  # actuals the backtest scores
        return SplitData(
            data,
            data.frame,
            data.frame.iloc[:0],
            data.frame.iloc[:0],
            "forecast",
            "mase",
            rows={"train": steps, "test": backtested, "series": count},
            payload=dict(data.payload),
        )

    def fit(self, data: SplitData, config: PipelineConfig, context: RunContext) -> FittedModel:
        """Backtest every family, choose by mean MASE, refit, calibrate and export."""
        from shipyard.tasks.forecasting.evaluation import leaderboard
        from shipyard.tasks.forecasting.training import export_forecaster, train_forecaster

        settings = forecasting_settings(config)
        run = train_forecaster(
            data.payload["series"],
            frequency=data.payload["frequency"],
            season=data.payload["season"],
            horizon=settings.horizon,
            windows=settings.windows,
            step=settings.step or settings.horizon,
            families=settings.models,
            level=settings.level,
            rounds=settings.lightgbm_rounds,
            covariates=settings.covariates,
            report=context.report,
        )
        data.prepared.notes.extend(run.notes)
        files, model_entry = export_forecaster(run)
        return FittedModel(
            None,
            run.family,
            leaderboard(run),
            {"family": run.family},
            payload={"run": run, "files": files, "model": model_entry},
        )

    def check_parity(self, fitted: FittedModel, data: SplitData) -> dict[str, float]:
        """Forecast every series with the exported files and the trained objects."""
        from shipyard.tasks.forecasting.training import check_forecast_parity

        run = fitted.payload["run"]
        gap = check_forecast_parity(run, fitted.payload["files"], fitted.payload["model"])
        return {"rows": float(len(run.series) * run.horizon), "single": gap, "batched": gap}

    def evaluate(
        self, fitted: FittedModel, data: SplitData, config: PipelineConfig, context: RunContext
    ) -> EvaluatedModel:
        """Report the backtest with intervals, the verdict, the coverage; the drift reference."""
        from shipyard.monitoring.reference import reference_to_json
        from shipyard.tasks.forecasting.evaluation import backtest_section
        from shipyard.tasks.forecasting.monitoring import forecast_reference

        settings, run = forecasting_settings(config), fitted.payload["run"]
        evaluation = config.evaluation
        section, metrics, verdict = backtest_section(
            run,
            n_samples=evaluation.bootstrap_samples,
            confidence=evaluation.confidence,
            seed=config.seed,
        )
        fitted.verdict = verdict
        manifest = {
            "task": "forecasting",
            "target": config.data.target,
            "classes": [],
            "model": fitted.payload["model"],
            "forecasting": {
                **settings.model_dump(mode="json"),
                "frequency": run.frequency,
                "season_length": run.season,
                "data_window": data.prepared.data_section,
                **section,
            },
            "metrics": {"test": {name: value.as_dict() for name, value in metrics.items()}},
            "sensitive": [],
            "drift_reference": "drift_reference.json",
            "evaluation": {
                "intended_use": evaluation.intended_use,
                "out_of_scope_use": evaluation.out_of_scope_use,
                "data": {"source": config.data.source},
            },
        }
        reference = reference_to_json(forecast_reference(run))
        files = {
            **fitted.payload["files"],
            "drift_reference.json": json.dumps(reference, allow_nan=False).encode(),
        }
        return EvaluatedModel(metrics, manifest, files)

    # Serving and monitoring --------------------------------------------------------------------

    def load(self, directory: Path, manifest: Manifest, unknown_fields: str) -> Any:
        """Build a :class:`~shipyard.tasks.forecasting.served.ServedForecaster`."""
        from shipyard.tasks.forecasting.served import ServedForecaster

        return ServedForecaster.from_directory(directory, manifest.to_document()["model"]["files"])

    def monitoring(self, directory: Path, manifest: Manifest, reference: str) -> TaskMonitoring:
        """Sketch the served forecasts' level; score windows of actuals (error, coverage)."""
        from shipyard.monitoring.adapters import read_reference
        from shipyard.tasks.forecasting.monitoring import forecast_monitoring

        promised = manifest.to_document().get("metrics", {}).get("test", {}).get("mase", {})
        return forecast_monitoring(
            self.load(directory, manifest, "reject"),
            read_reference(directory, manifest.drift_reference, reference),
            promised.get("value"),
        )

    def retrain_steps(self) -> RetrainSteps:
        """Actuals join the series; the gate backtests both versions on the newest data."""
        from shipyard.tasks.forecasting.loop import FORECASTING_STEPS

        return FORECASTING_STEPS

    def document_sections(self) -> DocumentSections:
        """Return the backtest, verdict, coverage, horizon and data window sections."""
        from shipyard.tasks.forecasting.documents import FORECASTING_SECTIONS

        return FORECASTING_SECTIONS
