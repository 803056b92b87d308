"""The model card, generated from what the registry and the bundle record, never typed by hand.

Sections follow Mitchell et al., "Model Cards for Model Reporting" (FAT* 2019): model details,
intended use (from the config), training data and its contract, metrics with intervals, slices,
fairness, explanations, robustness, limitations and ethical considerations (derived from the
measurements), and versions and hashes (from the registry's lineage).

A card is written into each bundle at training time; :func:`card_for_version` renders the full
card of a registered version, with its registry record and audit log added.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from shipyard.evaluation.report import (
    TABULAR_SECTIONS,
    Document,
    DocumentSections,
    fairness_blocks,
    metric_text,
    render_report,
    robustness_blocks,
    selection_blocks,
    slice_blocks,
    target_text,
)

__all__ = ["build_card", "bundle_documents", "personal_data_items"]


def _limitations(manifest: Mapping[str, Any], sections: DocumentSections) -> list[str]:
    evaluation = manifest.get("evaluation", {})
    found = []
    worst = [item for item in evaluation.get("slices", []) if item.get("worst")]
    metric = evaluation.get("slice_metric")
    for item in worst[:3]:
        value = item["metrics"].get(metric)
        if value:
            found.append(
                f"Weaker on {item['feature']} = {item['value']} ({item['rows']} test rows): "
                f"{metric} {metric_text(value)}."
            )
    fairness = manifest.get("fairness") or {}
    for breach in fairness.get("gate", {}).get("breaches", []):
        found.append(f"Fairness threshold breached: {breach['message']}.")
    for name, item in evaluation.get("robustness", {}).get("perturbations", {}).items():
        if item["stability"] < 0.95:
            found.append(
                f"Only {item['stability']:.1%} of decisions survive the {name} perturbation."
            )
    if sections.limitations is not None:
        found += sections.limitations(manifest)
    found.append(
        "Measured on the test split of the training source only; performance on other "
        "populations or later data is unknown until it is evaluated there."
    )
    found += [str(note) for note in manifest.get("notes", [])]
    return found


def _ethics(manifest: Mapping[str, Any]) -> list[str]:
    sensitive = manifest.get("sensitive", [])
    if not sensitive:
        return [
            "No sensitive columns were configured, so group fairness was not measured. Set "
            "'sensitive' in the config to measure it."
        ]
    notes = [f"Sensitive columns: {', '.join(sensitive)}."]
    counterfactual = manifest.get("evaluation", {}).get("robustness", {}).get("counterfactual", {})
    for column, item in counterfactual.items():
        if item["used_as_feature"]:
            notes.append(
                f"'{column}' is a model input: changing it alone changes "
                f"{item['change_rate']:.2%} of test decisions. Consider dropping it "
                "(data.drop) if decisions must not depend on it directly."
            )
        else:
            notes.append(
                f"'{column}' is not a model input, but other columns may act as proxies; "
                "see the fairness section for the measured outcome."
            )
    applied = (manifest.get("fairness") or {}).get("applied")
    if applied:
        test = applied["test"]
        before = test["demographic_parity_difference"]["before"]
        after = test["demographic_parity_difference"]["after"]
        notes.append(
            f"Decisions use a threshold per {test['grouping']} group (fairness mitigation, "
            f"child of version {manifest.get('parent_version')}): demographic parity "
            f"difference {before if before is None else f'{before:.4f}'} -> "
            f"{after if after is None else f'{after:.4f}'}, accuracy "
            f"{test['accuracy']['before']:.4f} -> {test['accuracy']['after']:.4f} on the "
            "test rows. Requests must carry the sensitive column."
        )
    mitigation = (manifest.get("fairness") or {}).get("mitigation")
    if mitigation:
        notes.append(
            f"A {mitigation['method']} mitigation would lower "
            f"{mitigation['disparity_metric']} by {mitigation['fairness_gained']:.4f} at an "
            f"accuracy cost of {mitigation['accuracy_paid']:.4f}; it is not applied to the "
            "served model."
        )
    return notes


def build_card(
    manifest: Mapping[str, Any],
    contract: Mapping[str, Any] | None = None,
    registry_record: Mapping[str, Any] | None = None,
    events: Sequence[Mapping[str, Any]] = (),
    sections: DocumentSections = TABULAR_SECTIONS,
) -> Document:
    """Build the card of a model from its manifest, contract and registry record.

    ``sections`` are the task's own blocks (``TaskClass.document_sections()``); the tabular
    sections by default.
    """
    evaluation = manifest.get("evaluation", {})
    name = manifest.get("name", "model")
    version = manifest.get("version")
    title = f"Model card: {name}" + (f" version {version}" if version else "")
    card = Document(title)

    card.heading("Model details")
    model = manifest["model"]
    classes = manifest.get("classes") or []
    task = str(manifest["task"])
    if manifest.get("classification"):
        task += f" ({manifest['classification']})"
    served_from = model.get("path") or ", ".join(sorted(model.get("files", {}).values()))
    card.items(
        [
            f"Task: {task}; {target_text(manifest.get('target'))}"
            + (f"; classes {', '.join(map(str, classes))}" if classes else ""),
            f"Model family: {model['family']} (served from {served_from}, format "
            f"{model['format']})",
            f"Selection metric: {manifest.get('metric')}",
            f"shipyard version: {manifest.get('code_version') or _shipyard(manifest)}",
            *_code_items(manifest.get("lineage") or {}),
        ]
    )

    card.heading("Intended use")
    card.paragraph(str(evaluation.get("intended_use", "Not stated.")))
    card.heading("Out-of-scope use")
    card.paragraph(str(evaluation.get("out_of_scope_use", "Not stated.")))

    card.heading("Training data")
    rows = manifest.get("rows", {})
    data = evaluation.get("data", {})
    card.items(
        [
            f"Source: {data.get('source', 'unknown')}"
            + (f"; test source: {data['test_source']}" if data.get("test_source") else ""),
            "Rows: " + ", ".join(f"{key} {value}" for key, value in rows.items()),
            f"Data fingerprint: {manifest.get('data_fingerprint') or 'assigned at registration'}",
        ]
    )
    if contract:
        card.table(
            ["column", "type", "nullable", "allowed"],
            [
                [
                    column["name"],
                    column["type"],
                    "yes" if column.get("nullable") else "no",
                    _allowed(column),
                ]
                for column in contract.get("columns", [])
            ],
        )
    if sections.data_items is not None:
        card.items(sections.data_items(manifest))

    card.heading("Metrics (test split, bootstrap intervals)")
    card.table(
        ["metric", "value [CI]"],
        # A bundle registered by hand may carry no test metrics (the manifest allows it).
        [
            [key, metric_text(value)]
            for key, value in manifest.get("metrics", {}).get("test", {}).items()
        ],
    )
    if sections.blocks is not None:
        sections.blocks(card, manifest)
        fairness_blocks(card, manifest.get("fairness"))
    else:
        _tabular_blocks(card, manifest)

    card.heading("Limitations")
    card.items(_limitations(manifest, sections))
    card.heading("Ethical considerations")
    card.items(_ethics(manifest))
    card.heading("Personal data")
    card.items(personal_data_items(manifest))
    _lineage(card, manifest, registry_record, events)
    return card


POLICY_TEXT = {
    "hash": "logged as a keyed hash (HMAC-SHA256; the key stays beside the registry's bundles)",
    "drop": "left out of the prediction log",
    "keep": "logged in clear",
}


def personal_data_items(manifest: Mapping[str, Any]) -> list[str]:
    """List the personal data the model reads and what the prediction log keeps of it."""
    entry = manifest.get("personal_data") or {}
    tagged = [str(name) for name in entry.get("columns", [])]
    policy = str(entry.get("log_policy", "keep"))
    sensitive = [str(name) for name in manifest.get("sensitive", [])]
    detected = ((manifest.get("data") or {}).get("profile") or {}).get("personal") or {}
    items = []
    if tagged:
        items.append(
            f"Tagged as personal data (data.personal): {', '.join(tagged)}; "
            f"{POLICY_TEXT.get(policy, policy)} (monitoring.personal_data: {policy})."
        )
    else:
        items.append("No column is tagged as personal data (data.personal).")
    if sensitive:
        items.append(
            f"Sensitive for fairness, also personal data: {', '.join(sensitive)}"
            + ("." if set(sensitive) <= set(tagged) else "; logged in clear unless tagged.")
        )
    for column, found in sorted(detected.items()):
        reasons = [
            f"{kind} in {share:.0%} of sampled values"
            for kind, share in found.get("values", {}).items()
        ]
        if found.get("hint"):
            reasons.append(f"its name suggests {found['hint']}")
        state = "tagged" if column in tagged else "not tagged"
        items.append(
            f"The profile found '{column}' likely personal ({'; '.join(reasons)}): {state}."
        )
    return items


def _tabular_blocks(card: Document, manifest: Mapping[str, Any]) -> None:
    """Model selection, slices, fairness, explanations and robustness of a tabular model."""
    evaluation = manifest.get("evaluation", {})
    selection_blocks(card, manifest)
    slices = evaluation.get("slices", [])
    slice_blocks(card, [item for item in slices if item.get("worst")])
    fairness_blocks(card, manifest.get("fairness"))

    card.heading("Explanation summary")
    explanation = evaluation.get("explanations", {})
    if explanation.get("summary"):
        top = list(_largest_first(explanation["summary"]))[:8]
        card.paragraph(
            f"Largest mean absolute contributions to the {explanation['output']}: "
            + ", ".join(f"{key} {value:.4f}" for key, value in top)
            + "."
        )
    if explanation.get("note"):
        card.paragraph(explanation["note"])
    importance = evaluation.get("permutation_importance", {})
    if importance:
        card.paragraph(
            "Permutation importance (largest first): "
            + ", ".join(
                f"{key} {value['mean']:.4f}" for key, value in _largest_first(importance)[:8]
            )
            + "."
        )
    robustness_blocks(card, evaluation.get("robustness", {}))


def _lineage(
    card: Document,
    manifest: Mapping[str, Any],
    registry_record: Mapping[str, Any] | None,
    events: Sequence[Mapping[str, Any]],
) -> None:
    card.heading("Versions and hashes")
    lineage = [
        f"Parent version: {manifest.get('parent_version')}",
        f"Data fingerprint: {manifest.get('data_fingerprint')}",
    ]
    if registry_record:
        lineage += [
            f"Registered: {registry_record.get('created_at')}",
            f"Aliases: {', '.join(registry_record.get('aliases', [])) or 'none'}",
            f"Manifest SHA-256: {registry_record.get('manifest_sha256')}",
        ]
    card.items(lineage)
    packages = manifest.get("package_versions") or (manifest.get("lineage") or {}).get(
        "packages", {}
    )
    if packages:
        card.table(["package", "version"], [[key, value] for key, value in packages.items()])
    files = manifest.get("files", {})
    if files:
        card.table(["bundle file", "SHA-256"], [[key, value] for key, value in files.items()])
    if events:
        card.heading("Audit log")
        card.table(
            ["at", "action", "detail"],
            [[event["at"][:19], event["action"], _detail(event["detail"])] for event in events],
        )


def _code_items(lineage: Mapping[str, Any]) -> list[str]:
    """Which code, Python and machine trained the model (nothing for bundles without lineage)."""
    if not lineage:
        return []
    if lineage.get("commit"):
        changes = "with uncommitted changes" if lineage.get("dirty") else "clean working tree"
        code = f"Code: git commit {lineage['commit']} ({changes})"
    else:
        code = f"Code: no git commit recorded ({lineage.get('source', 'unknown source')})"
    return [
        code,
        f"Python: {lineage.get('python', 'unknown')}; CPUs: {lineage.get('cpu_count', 'unknown')}",
    ]


def _shipyard(manifest: Mapping[str, Any]) -> Any:
    return manifest.get("package_versions", {}).get("shipyard")


def bundle_documents(
    manifest: Mapping[str, Any],
    files: Mapping[str, bytes],
    contract: Mapping[str, Any] | None = None,
    plots: Mapping[str, bytes] | None = None,
    sections: DocumentSections = TABULAR_SECTIONS,
) -> dict[str, bytes]:
    """Render the report and the model card of a bundle about to be registered.

    ``manifest`` is the bundle's manifest with ``name``, ``parent_version`` and
    ``package_versions`` added; the card lists the SHA-256 of every file in ``files`` and
    the report. Returns ``report.html``, ``model_card.md`` and ``model_card.html``.
    """
    import hashlib

    extra = {"report.html": render_report(manifest, plots or {}, sections).encode()}
    hashes = {
        name: hashlib.sha256(data).hexdigest() for name, data in sorted({**files, **extra}.items())
    }
    card = build_card({**manifest, "files": hashes}, contract, sections=sections)
    extra["model_card.md"] = card.to_markdown().encode()
    extra["model_card.html"] = card.to_html().encode()
    return extra


def _allowed(column: Mapping[str, Any]) -> str:
    if column.get("categories"):
        shown = list(column["categories"])[:8]
        more = f", ... ({len(column['categories'])})" if len(column["categories"]) > 8 else ""
        return ", ".join(map(str, shown)) + more
    limits = [f"min {column['min']:g}" if column.get("min") is not None else ""]
    limits.append(f"max {column['max']:g}" if column.get("max") is not None else "")
    return ", ".join(part for part in limits if part) or "any"


def _detail(detail: Mapping[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in detail.items() if value not in ("", None))


def _largest_first(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Order a summary by value (or its ``mean``), largest first; JSON does not keep order."""

    def key(item: tuple[str, Any]) -> float:
        value = item[1]
        return -float(value["mean"] if isinstance(value, Mapping) else value)

    return sorted(values.items(), key=key)
