"""The evaluation report: one self-contained HTML file that opens offline in any browser.

The report is rendered from the ``evaluation`` and ``fairness`` sections of a bundle manifest and
the PNG plots, which are embedded as base64 ``data:`` URIs, so the file needs no network, no
scripts and no other files. :class:`Document` is a tiny block model (headings, paragraphs,
tables, lists, images) that renders to both HTML and Markdown; the model card uses it too.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    pass

__all__ = [
    "TABULAR_SECTIONS",
    "Document",
    "DocumentSections",
    "fairness_blocks",
    "metric_text",
    "render_report",
]

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       color: #1d1d1f; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f0f3f7; }
tr.worst td { background: #fde8e8; }
.verdict-pass { color: #17692c; font-weight: bold; }
.verdict-fail { color: #b00020; font-weight: bold; }
figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure img { max-width: 480px; border: 1px solid #ddd; }
"""


def metric_text(value: Mapping[str, Any] | None) -> str:
    """``0.9123 [0.9011, 0.9230]`` from a metric dict with ``value``, ``low``, ``high``."""
    if not value:
        return "-"
    return f"{value['value']:.4f} [{value['low']:.4f}, {value['high']:.4f}]"


@dataclass
class Document:
    """Blocks that render to HTML and to Markdown."""

    title: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)

    def heading(self, text: str) -> None:
        """Add a section heading."""
        self.blocks.append(("h2", text))

    def paragraph(self, text: str, css: str | None = None) -> None:
        """Add a paragraph (``css`` is an optional HTML class)."""
        self.blocks.append(("p", (text, css)))

    def items(self, entries: Sequence[str]) -> None:
        """Add a bulleted list."""
        self.blocks.append(("ul", list(entries)))

    def table(
        self,
        headers: Sequence[str],
        rows: Sequence[Sequence[Any]],
        marked: Sequence[bool] | None = None,
    ) -> None:
        """Add a table; ``marked`` rows are highlighted (worst slices)."""
        self.blocks.append(("table", (list(headers), [list(r) for r in rows], marked)))

    def image(self, name: str, png: bytes) -> None:
        """Add a PNG image, embedded (HTML) or referenced by file name (Markdown)."""
        self.blocks.append(("img", (name, png)))

    def to_html(self) -> str:
        """Render a complete, self-contained HTML page."""
        out = [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            f"<title>{html.escape(self.title)}</title>",
            f"<style>{STYLE}</style></head><body>",
            f"<h1>{html.escape(self.title)}</h1>",
        ]
        for kind, content in self.blocks:
            if kind == "h2":
                out.append(f"<h2>{html.escape(content)}</h2>")
            elif kind == "p":
                text, css = content
                attribute = f' class="{css}"' if css else ""
                out.append(f"<p{attribute}>{html.escape(text)}</p>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in content))
                out.append("</ul>")
            elif kind == "table":
                headers, rows, marked = content
                out.append("<table><tr>")
                out.append("".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>")
                for index, row in enumerate(rows):
                    css = ' class="worst"' if marked and marked[index] else ""
                    cells = "".join(f"<td>{html.escape(str(cell))}</td>" for cell in row)
                    out.append(f"<tr{css}>{cells}</tr>")
                out.append("</table>")
            elif kind == "img":
                name, png = content
                encoded = base64.b64encode(png).decode("ascii")
                out.append(
                    f'<figure><img alt="{html.escape(name)}" '
                    f'src="data:image/png;base64,{encoded}">'
                    f"<figcaption>{html.escape(name)}</figcaption></figure>"
                )
        out.append("</body></html>")
        return "\n".join(out) + "\n"

    def to_markdown(self) -> str:
        """Render Markdown (images are referenced as ``plots/NAME.png``)."""
        out = [f"# {self.title}", ""]
        for kind, content in self.blocks:
            if kind == "h2":
                out += [f"## {content}", ""]
            elif kind == "p":
                out += [content[0], ""]
            elif kind == "ul":
                out += [f"- {item}" for item in content] + [""]
            elif kind == "table":
                headers, rows, marked = content
                out.append("| " + " | ".join(map(_cell, headers)) + " |")
                out.append("|" + "---|" * len(headers))
                for index, row in enumerate(rows):
                    cells = [_cell(cell) for cell in row]
                    if marked and marked[index]:
                        cells[0] = f"**{cells[0]}** (worst)"
                    out.append("| " + " | ".join(cells) + " |")
                out.append("")
            elif kind == "img":
                out += [f"![{content[0]}](plots/{content[0]}.png)", ""]
        return "\n".join(out)


@dataclass(frozen=True)
class DocumentSections:
    """A task's own blocks of the model card and the evaluation report.

    ``blocks`` replaces the tabular sections (selection, plots, slices, explanations) with the
    task's; ``limitations`` adds to the card's list; ``data_items`` adds lines to its
    training-data section. A task returns one from ``Task.document_sections()``.
    """

    blocks: Callable[[Document, Mapping[str, Any]], None] | None = None
    limitations: Callable[[Mapping[str, Any]], list[str]] | None = None
    data_items: Callable[[Mapping[str, Any]], list[str]] | None = None


TABULAR_SECTIONS = DocumentSections()
"""The default: the tabular sections, written by this module and the card."""


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def fairness_blocks(document: Document, fairness: Mapping[str, Any] | None) -> None:
    """Add the fairness verdict, disparities with intervals, per-group rates and mitigation."""
    document.heading("Fairness")
    if not fairness:
        document.paragraph(
            "Not assessed: no sensitive columns are configured, or the task is not binary."
        )
        return
    gate = fairness["gate"]
    document.paragraph(
        f"Gate: {gate['verdict']}", "verdict-pass" if gate["passed"] else "verdict-fail"
    )
    document.paragraph(f"Decisions are for the positive class '{fairness['positive_class']}'.")
    rows = []
    for grouping in fairness["groupings"]:
        for name, item in grouping["disparities"].items():
            rows.append(
                [
                    grouping["grouping"],
                    name,
                    f"{item['value']:.4f} [{item['low']:.4f}, {item['high']:.4f}]",
                    f"{item['rate']}: {item['highest_group']} {item['highest_rate']:.4f}, "
                    f"{item['lowest_group']} {item['lowest_rate']:.4f}",
                    gate["thresholds"].get(name, "-"),
                ]
            )
    document.table(["sensitive", "disparity", "value [CI]", "extremes", "threshold"], rows)
    group_rows = []
    for grouping in fairness["groupings"]:
        for group in grouping["groups"]:
            group_rows.append(
                [
                    grouping["grouping"],
                    group["group"],
                    group["rows"],
                    f"{group['selection_rate']:.4f}",
                    f"{group['true_positive_rate']:.4f}",
                    f"{group['false_positive_rate']:.4f}",
                ]
            )
    document.table(["sensitive", "group", "rows", "selection rate", "TPR", "FPR"], group_rows)
    mitigation = fairness.get("mitigation")
    if mitigation:
        document.paragraph(
            f"Mitigation ({mitigation['method']}, {mitigation['constraint']} on "
            f"{mitigation['grouping']}): {mitigation['disparity_metric']} "
            f"{mitigation['disparity_before']:.4f} -> {mitigation['disparity_after']:.4f} "
            f"(gained {mitigation['fairness_gained']:.4f}); accuracy "
            f"{mitigation['accuracy_before']:.4f} -> {mitigation['accuracy_after']:.4f} "
            f"(paid {mitigation['accuracy_paid']:.4f}). Measured only; the served model is "
            "unchanged."
        )
    applied = fairness.get("applied")
    if applied:
        applied_blocks(document, applied)


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def applied_blocks(document: Document, applied: Mapping[str, Any]) -> None:
    """Add the mitigation this version serves: thresholds per group and the trade-off."""
    test, validation = applied["test"], applied["validation"]
    parity, accuracy = test["demographic_parity_difference"], test["accuracy"]
    document.paragraph(
        f"Served with a decision threshold per {test['grouping']} group, fitted on "
        f"{validation['rows']} validation rows for demographic parity difference at most "
        f"{validation['target']:g} (reached {validation['demographic_parity_difference']:.4f}); "
        f"probabilities are the base model's. On {test['rows']} test rows: demographic parity "
        f"difference {_number(parity['before'])} -> {_number(parity['after'])}, accuracy "
        f"{accuracy['before']:.4f} -> {accuracy['after']:.4f}. Groups not listed get "
        f"{applied['default_threshold']:.4f}."
    )
    document.table(
        ["group", "threshold"],
        [[group, f"{value:.4f}"] for group, value in applied["thresholds"].items()],
    )


def selection_blocks(document: Document, manifest: Mapping[str, Any]) -> None:
    """Add the leaderboard (CV means with intervals, p-values, serving cost) and the verdict."""
    leaderboard = manifest.get("leaderboard") or []
    if not leaderboard:
        return
    document.heading(f"Model selection (cross-validated {manifest.get('metric')})")

    def number(value: Any, digits: str) -> str:
        return "" if value is None else format(value, digits)

    columns = ["rank", "model", "CV mean [CI]", "p vs best", "trials", "1 record/s"]
    document.table(
        [*columns, "batch rows/s", "status"],
        [
            [
                str(rank) if row.get("status") == "ok" else "",
                row["name"],
                ""
                if row.get("cv_mean") is None
                else f"{row['cv_mean']:.4f} [{row['cv_low']:.4f}, {row['cv_high']:.4f}]",
                number(row.get("p_value_vs_best"), ".3g"),
                str(row.get("trials") or ""),
                number(row.get("single_per_second"), ",.0f"),
                number(row.get("batch_per_second"), ",.0f"),
                row.get("status", "") + (f": {row['message']}" if row.get("message") else ""),
            ]
            for rank, row in enumerate(leaderboard, start=1)
        ],
    )
    verdict = manifest.get("verdict") or {}
    if verdict.get("summary"):
        document.paragraph(
            f"{verdict['summary']} ({verdict.get('test', 'paired test')}, "
            f"alpha {verdict.get('alpha')}). Shipped: {verdict.get('chosen')}."
        )
    threshold = manifest.get("decision_threshold")
    if threshold:
        document.paragraph(
            f"Decision threshold {threshold['value']:.3f} on the positive-class probability, "
            f"tuned for out-of-fold {threshold['metric']} ({threshold['cv_value']:.4f}); "
            "served labels use it."
        )
    calibration = manifest.get("calibration")
    if calibration:
        document.paragraph(
            f"Probabilities calibrated with {calibration['method']} on out-of-fold predictions."
        )


def slice_blocks(document: Document, slices: Sequence[Mapping[str, Any]]) -> None:
    """Add the per-slice table, worst slices highlighted."""
    document.heading("Slices")
    if not slices:
        document.paragraph("No slices were computed.")
        return
    names: list[str] = []
    for item in slices:
        names += [name for name in item["metrics"] if name not in names]
    rows = [
        [item["feature"], item["value"], item["rows"]]
        + [metric_text(item["metrics"].get(name)) for name in names]
        for item in slices
    ]
    worst = [bool(item["worst"]) for item in slices]
    document.paragraph("Highlighted rows are the worst slices.")
    document.table(["feature", "slice", "rows", *names], rows, worst)


def target_text(target: Any) -> str:
    """Say what the model predicts: ``target 'income'``, or that it learnt without one."""
    return "no target (learnt without labels)" if target is None else f"target '{target}'"


def render_report(
    manifest: Mapping[str, Any],
    plots: Mapping[str, bytes],
    sections: DocumentSections = TABULAR_SECTIONS,
) -> str:
    """Render the HTML report of a bundle from its manifest and plots.

    ``sections`` are the task's own blocks (``TaskClass.document_sections()``); the tabular
    sections by default.
    """
    evaluation = manifest.get("evaluation", {})
    title = f"Evaluation report: {manifest.get('name', evaluation.get('model', 'model'))}"
    document = Document(title)
    document.paragraph(
        f"Task {manifest['task']}, {target_text(manifest.get('target'))}, model family "
        f"{manifest['model']['family']}; rows: "
        + ", ".join(f"{key} {value}" for key, value in manifest.get("rows", {}).items())
        + "."
    )
    document.heading("Test metrics (95% bootstrap intervals unless stated)")
    document.table(
        ["metric", "value [CI]"],
        [[name, metric_text(value)] for name, value in manifest["metrics"]["test"].items()],
    )
    if sections.blocks is not None:
        sections.blocks(document, manifest)
        for name, png in plots.items():
            document.image(name, png)
        return document.to_html()
    selection_blocks(document, manifest)
    document.heading("Plots")
    for name, png in plots.items():
        document.image(name, png)
    fairness_blocks(document, manifest.get("fairness"))
    slice_blocks(document, evaluation.get("slices", []))
    document.heading("Explanations")
    explanation = evaluation.get("explanations", {})
    if explanation.get("note"):
        document.paragraph(explanation["note"])
    if explanation.get("summary"):
        document.paragraph(f"Mean absolute contribution to the {explanation['output']}:")
        document.table(
            ["column", "mean |contribution|"],
            [[k, f"{v:.4f}"] for k, v in _largest_first(explanation["summary"])],
        )
    importance = evaluation.get("permutation_importance", {})
    if importance:
        document.paragraph(f"Permutation importance (drop in {evaluation.get('metric')}):")
        document.table(
            ["column", "mean drop", "std"],
            [[k, f"{v['mean']:.4f}", f"{v['std']:.4f}"] for k, v in _largest_first(importance)],
        )
    robustness_blocks(document, evaluation.get("robustness", {}))
    return document.to_html()


def robustness_blocks(document: Document, robustness: Mapping[str, Any]) -> None:
    """Add perturbation stability and counterfactual flip rates."""
    document.heading("Robustness")
    perturbations = robustness.get("perturbations", {})
    if perturbations:
        document.table(
            ["perturbation", "decisions unchanged"],
            [[name, f"{item['stability']:.2%}"] for name, item in perturbations.items()],
        )
    counterfactual = robustness.get("counterfactual", {})
    if counterfactual:
        rows = []
        for column, item in counterfactual.items():
            used = "yes" if item["used_as_feature"] else "no (not a feature)"
            rows.append([column, used, f"{item['change_rate']:.2%}"])
        document.paragraph(
            "Counterfactual test: each sensitive attribute set to each of its other values, "
            "all else equal; share of rows whose decision changes for at least one value."
        )
        document.table(["sensitive", "used as feature", "decisions changed"], rows)


def _largest_first(values: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Order a summary by value (or its ``mean``), largest first; JSON does not keep order."""

    def key(item: tuple[str, Any]) -> float:
        value = item[1]
        return -float(value["mean"] if isinstance(value, Mapping) else value)

    return sorted(values.items(), key=key)
