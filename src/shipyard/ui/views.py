"""What each page of the UI shows, read from the registry and the monitoring store.

Plain functions that return dicts and lists, ready for the templates: no web framework here,
so that every page's content can be tested (and reused) without a browser. The pages read
manifests through the registry; the version page verifies the bundle's hashes first, so a
tampered bundle shows its error instead of its numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry

__all__ = [
    "compare_versions",
    "model_overview",
    "models_overview",
    "monitoring_series",
    "primary_metric",
    "version_detail",
]


def primary_metric(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """Return the selection metric's test value with its interval, or ``None``."""
    metric = manifest.get("metric")
    value = (manifest.get("metrics") or {}).get("test", {}).get(metric)
    if not isinstance(value, Mapping) or "value" not in value:
        return None
    return {"name": metric, **value}


def _fairness(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """Summarise the fairness verdict and gate in a few words: measured, passed, breaches."""
    fairness = manifest.get("fairness") or {}
    gate = fairness.get("gate") or {}
    if not fairness:
        return {"measured": False, "passed": None, "breaches": [], "text": "not measured"}
    passed = bool(gate.get("passed", True))
    breaches = [str(item.get("message", item)) for item in gate.get("breaches", [])]
    return {
        "measured": True,
        "passed": passed,
        "breaches": breaches,
        "text": "gate passed" if passed else f"gate failed ({len(breaches)} breach(es))",
    }


def _manifest(registry: Registry, version: ModelVersion) -> dict[str, Any]:
    try:
        return registry.manifest(version.reference)
    except (OSError, ShipyardError, ValueError):
        return {}


def models_overview(registry: Registry) -> list[dict[str, Any]]:
    """One row per model: task, versions, aliases and the champion's metric."""
    rows = []
    for summary in registry.models():
        champion = summary["aliases"].get(DEFAULT_ALIAS)
        metric = None
        if champion is not None:
            version = registry.get(summary["name"], champion)
            metric = primary_metric(_manifest(registry, version))
        rows.append({**summary, "champion": champion, "metric": metric})
    return rows


def _gate_events(events: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Return the latest gate decision of each version (retraining and canary gates)."""
    latest: dict[int, dict[str, Any]] = {}
    for event in events:
        if "gate" in event["action"] and event["version"] is not None:
            latest[int(event["version"])] = event
    return latest


def model_overview(registry: Registry, name: str) -> dict[str, Any]:
    """Gather the model page: versions with aliases, metric, fairness and gates; the leaderboard.

    Raises
    ------
    ModelNotFoundError
        When no model has that name.
    """
    versions = registry.versions(name)
    events = registry.events(name)
    gates = _gate_events(events)
    rows: list[dict[str, Any]] = []
    manifests: dict[int, dict[str, Any]] = {}
    for version in reversed(versions):
        manifest = _manifest(registry, version)
        manifests[version.version] = manifest
        rows.append(
            {
                "version": version.version,
                "created_at": version.created_at,
                "task": version.task,
                "aliases": version.aliases,
                "parent": version.parent_version,
                "metric": primary_metric(manifest),
                "fairness": _fairness(manifest),
                "gate": gates.get(version.version),
            }
        )
    aliases: dict[str, int] = {
        alias: version.version for version in versions for alias in version.aliases
    }
    shown = aliases.get(DEFAULT_ALIAS, versions[-1].version)
    leaderboard = [
        {
            "name": entry.get("name"),
            "cv_mean": entry.get("cv_mean"),
            "cv_low": entry.get("cv_low"),
            "cv_high": entry.get("cv_high"),
            "p_value": entry.get("p_value_vs_best"),
            "single_ms": entry.get("single_ms"),
            "message": entry.get("message", ""),
        }
        for entry in manifests[shown].get("leaderboard", [])
    ]
    return {
        "name": name,
        "versions": rows,
        "aliases": aliases,
        "leaderboard": leaderboard,
        "leaderboard_version": shown,
        "metric_name": manifests[shown].get("metric"),
        "events": events[-5:][::-1],
    }


def _lineage(version: ModelVersion, manifest: Mapping[str, Any]) -> dict[str, Any]:
    lineage = manifest.get("lineage") or {}
    return {
        "data_fingerprint": version.data_fingerprint,
        "parent": version.parent_version,
        "code_version": manifest.get("code_version"),
        "commit": lineage.get("commit"),
        "dirty": lineage.get("dirty"),
        "source": lineage.get("source"),
        "python": lineage.get("python"),
        "packages": dict(sorted((lineage.get("packages") or version.package_versions).items())),
        "config": version.config or "",
    }


def _metric_rows(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    test = (manifest.get("metrics") or {}).get("test") or {}
    return [
        {"name": metric, **value}
        for metric, value in sorted(test.items())
        if isinstance(value, Mapping) and "value" in value
    ]


def version_detail(registry: Registry, name: str, number: int) -> dict[str, Any]:
    """Gather the version page: metrics with intervals, verdict, fairness, lineage, events.

    Raises
    ------
    ModelNotFoundError
        When the version does not exist.
    BundleIntegrityError
        When its bundle does not match its recorded hashes.
    """
    version = registry.get(name, number)
    manifest = registry.verify(version.reference)
    events = [event for event in registry.events(name) if event["version"] == number]
    return {
        "name": name,
        "version": number,
        "record": version,
        "task": version.task,
        "aliases": version.aliases,
        "metric_name": manifest.get("metric"),
        "metrics": _metric_rows(manifest),
        "verdict": manifest.get("verdict") or {},
        "fairness": _fairness(manifest),
        "lineage": _lineage(version, manifest),
        "notes": manifest.get("notes") or [],
        "rows": manifest.get("rows") or {},
        "has_report": "report.html" in (manifest.get("files") or {}),
        "events": events[::-1],
        "params": version.params,
    }


def compare_versions(registry: Registry, name: str, first: int, second: int) -> dict[str, Any]:
    """Two versions side by side: test metrics (with the difference), parameters, lineage.

    Raises
    ------
    ModelNotFoundError
        When either version does not exist.
    """
    left, right = registry.get(name, first), registry.get(name, second)
    manifests = [_manifest(registry, left), _manifest(registry, right)]
    tests = [(m.get("metrics") or {}).get("test") or {} for m in manifests]
    metrics = []
    for metric in sorted(set(tests[0]) | set(tests[1])):
        a, b = tests[0].get(metric), tests[1].get(metric)
        both = isinstance(a, Mapping) and isinstance(b, Mapping)
        a, b = (a or {}), (b or {})
        metrics.append(
            {
                "name": metric,
                "first": a or None,
                "second": b or None,
                # Overlapping intervals: the test set cannot tell these two apart.
                "overlap": both and a["low"] <= b["high"] and b["low"] <= a["high"],
                "difference": b["value"] - a["value"] if both else None,
            }
        )
    lineages = [_lineage(left, manifests[0]), _lineage(right, manifests[1])]
    params = sorted(set(left.params) | set(right.params))
    packages = sorted(set(lineages[0]["packages"]) | set(lineages[1]["packages"]))
    return {
        "name": name,
        "first": left,
        "second": right,
        "metrics": metrics,
        "params": [
            (key, left.params.get(key), right.params.get(key))
            for key in params
            if left.params.get(key) != right.params.get(key)
        ],
        "lineage": [
            (key, lineages[0][key], lineages[1][key])
            for key in ("data_fingerprint", "parent", "code_version", "commit", "dirty", "python")
        ],
        "packages": [
            (key, lineages[0]["packages"].get(key), lineages[1]["packages"].get(key))
            for key in packages
            if lineages[0]["packages"].get(key) != lineages[1]["packages"].get(key)
        ],
        "fairness": [_fairness(manifests[0]), _fairness(manifests[1])],
    }


def monitoring_series(
    registry: Registry,
    name: str,
    number: int | None,
    window_size: int = 1000,
    hours: int = 24,
    buckets: int = 48,
) -> dict[str, Any]:
    """Gather the monitoring page's charts, as series: one point per drift window or time bucket.

    Drift (PSI per column), realised metrics with intervals and label-free estimates come
    from the drift windows of the version (advanced over the prediction log, as
    ``shipyard monitor`` does); requests, errors and the share of each version (the canary's)
    per time bucket over the last ``hours`` come from the prediction log.

    Raises
    ------
    ModelNotFoundError
        When the model or version does not exist.
    """
    from shipyard.monitoring.log import MonitoringStore
    from shipyard.pipeline.monitor import monitor

    reference = f"{name}:{number}" if number is not None else name
    version = registry.resolve(reference)
    notes: list[str] = []
    windows: list[dict[str, Any]] = []
    try:
        run = monitor(registry, version.reference, window_size=window_size)
        windows = run.as_dict()["windows"]
        notes.extend(run.notes)
    except ShipyardError as error:
        notes.append(str(error))
    store = MonitoringStore(registry.url)
    try:
        until = datetime.now(UTC)
        since = until - timedelta(hours=hours)
        traffic = store.traffic(name, since, until, buckets)
    finally:
        store.close()
    drift = _drift_series(windows)
    performance = _performance_series(windows)
    estimates = _estimate_series(windows)
    flow = _traffic_series(traffic)
    metric = performance["metric"] or "metric"
    charts = [
        _chart("drift", "Drift per column (PSI) per window", drift["x"], drift["series"]),
        _chart(
            "performance",
            f"Live {metric} from labelled feedback, with its 95% interval",
            performance["x"],
            {key: performance[key] for key in ("value", "low", "high")},
            band=True,
        ),
        _chart(
            "estimates", "Label-free estimates per window", estimates["x"], estimates["series"]
        ),
        _chart("requests", "Requests per minute", flow["starts"], flow["rate"], time=True),
        _chart(
            "errors",
            "Share of requests that failed",
            flow["starts"],
            {"failed share": flow["error_share"]},
            time=True,
        ),
        _chart(
            "canary",
            "Share of answered requests per version (the canary's share)",
            flow["starts"],
            flow["share"],
            time=True,
        ),
    ]
    return {
        "name": name,
        "version": version.version,
        "window_size": window_size,
        "windows": [
            {"index": w["index"], "count": w["count"], "drifted": w["drifted"]} for w in windows
        ],
        "charts": charts,
        "traffic": flow,
        "hours": hours,
        "notes": notes,
    }


def _chart(
    key: str,
    title: str,
    x: list[Any],
    series: dict[str, list[Any]],
    *,
    time: bool = False,
    band: bool = False,
) -> dict[str, Any]:
    """One chart: its x values, named series, and whether it has anything to show."""
    filled = any(value not in (None, 0, 0.0) for values in series.values() for value in values)
    return {
        "id": key,
        "title": title,
        "x": x,
        "series": series,
        "time": time,
        "band": band,
        "xlabel": "time" if time else "window",
        "empty": not filled,
    }


def _traffic_series(traffic: dict[str, Any]) -> dict[str, Any]:
    """Compute requests per minute per version, the error share, and each version's share.

    While a canary runs, the canary version's share of the answered requests is its line.
    """
    answered: dict[str, list[int]] = traffic["answered"]
    failed: list[int] = traffic["failed"]
    minutes = traffic["bucket_seconds"] / 60.0
    totals = [sum(column) for column in zip(*answered.values(), strict=True)] or [0] * len(failed)
    rate = {
        f"v{version}": [count / minutes for count in counts]
        for version, counts in answered.items()
    }
    rate["failed"] = [count / minutes for count in failed]
    return {
        **traffic,
        "rate": rate,
        "error_share": [
            fail / (total + fail) if total + fail else None
            for total, fail in zip(totals, failed, strict=True)
        ],
        "share": {
            f"v{version}": [
                count / total if total else None
                for count, total in zip(counts, totals, strict=True)
            ]
            for version, counts in answered.items()
        },
    }


def _drift_series(windows: list[dict[str, Any]]) -> dict[str, Any]:
    """PSI of each column per window (``None`` where the window had no verdict)."""
    columns: dict[str, list[float | None]] = {}
    for position, window in enumerate(windows):
        for row in window["report"] or []:
            series = columns.setdefault(str(row["column"]), [None] * len(windows))
            series[position] = float(row["psi"]) if row.get("psi") is not None else None
    ranked = sorted(columns.items(), key=lambda pair: -max((v or 0.0) for v in pair[1]))
    return {"x": [w["index"] for w in windows], "series": dict(ranked)}


def _performance_series(windows: list[dict[str, Any]]) -> dict[str, Any]:
    found = [w["performance"] for w in windows if w["performance"]]
    metric = found[0]["metric"] if found else None
    values, lows, highs = [], [], []
    for window in windows:
        performance = window["performance"] or {}
        values.append(performance.get("value"))
        lows.append(performance.get("low"))
        highs.append(performance.get("high"))
    return {
        "metric": metric,
        "x": [w["index"] for w in windows],
        "value": values,
        "low": lows,
        "high": highs,
    }


def _estimate_series(windows: list[dict[str, Any]]) -> dict[str, Any]:
    names = sorted({key for window in windows for key in (window["estimated"] or {})})
    return {
        "x": [w["index"] for w in windows],
        "series": {
            key: [(window["estimated"] or {}).get(key) for window in windows] for key in names
        },
    }
