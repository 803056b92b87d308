"""The data commands: ``shipyard profile`` and ``shipyard validate``, and the data report.

Registered on the root command by :func:`register`; each command calls one library function.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    EncodingOption,
    EngineOption,
    HeaderOption,
    HomeOption,
    JsonOption,
    RegistryOption,
    _open_registry,
    engine_config,
    handles_errors,
    read_options,
)
from shipyard.errors import ConfigError

__all__ = ["print_data_section", "register"]


def profile(
    context: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="CSV/TSV/Parquet/JSON-lines file, SQL source, or a directory of Parquet files."
        ),
    ],
    target: Annotated[
        str | None, typer.Option(help="Column to predict: measure associations with it.")
    ] = None,
    report: Annotated[
        Path | None, typer.Option(help="HTML report to write (default: SOURCE.profile.html).")
    ] = None,
    encoding: EncodingOption = None,
    header: HeaderOption = None,
    engine: EngineOption = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """Profile a data set: types, missing values, distributions; writes HTML and JSON reports.

    A directory of Parquet files is profiled per file (partition) and merged, on the engine
    given by --engine or engine.url (in process by default).
    """
    from shipyard.data.profile import profile_table
    from shipyard.data.report import write_reports

    settings = engine_config(config, engine)
    partitioned = Path(source).is_dir() or settings.kind != "local"
    with output.error_console.status(f"profiling {source}"):
        if partitioned:
            from shipyard.engines import open_engine
            from shipyard.engines.directory import list_partitions
            from shipyard.engines.profiling import profile_partitions

            with open_engine(settings) as opened:
                found = profile_partitions(opened, list_partitions(source), target=target)
        else:
            found = profile_table(source, target=target, options=read_options(encoding, header))
    stem = Path(str(source).split("#")[0].split("/")[-1] or "profile").name
    html_path = report or Path(f"{stem}.profile.html")
    json_path = html_path.with_suffix(".json")
    write_reports(found, html_path, json_path)
    if as_json:
        output.print_json(found.as_dict())
        return
    _print_profile(found)
    output.console.print(f"Report: {html_path} (JSON: {json_path})")


def _print_profile(found: Any) -> None:
    from rich.table import Table

    table = Table(
        title=f"{found.source}: {found.n_rows:,} rows, {found.n_columns} columns, "
        f"{found.duplicate_rows:,} duplicate rows ({found.seconds:.1f} s)",
        title_justify="left",
    )
    for column in (
        "column",
        "type",
        "semantic",
        "missing",
        "distinct",
        "summary",
        "target assoc.",
    ):
        table.add_column(column, justify="right" if column in ("missing", "distinct") else "left")
    for column in found.columns:
        if column.mean is not None:
            summary = (
                f"{column.minimum:.4g} .. {column.maximum:.4g}, median "
                f"{column.quantiles.get('50%', float('nan')):.4g}"
            )
        else:
            summary = ", ".join(str(value) for value, _ in column.top_values[:3])
        table.add_row(
            column.name,
            column.storage_type,
            column.semantic,
            f"{column.missing_share:.1%}",
            f"{column.distinct:,}",
            summary,
            "" if column.association is None else f"{column.association:.3f}",
        )
    output.console.print(table)
    for warning in found.warnings:
        output.console.print(f"[yellow]Warning:[/yellow] {warning}", highlight=False)
    _print_personal(found)


def _print_personal(found: Any) -> None:
    """List the columns that look personal and the config lines that tag them."""
    suggestion = found.personal_config()
    if suggestion is None:
        return
    output.console.print("[bold]Likely personal data[/bold]")
    for column in found.columns:
        if not column.looks_personal:
            continue
        reasons = [f"{kind} {share:.0%}" for kind, share in column.personal.items()]
        if column.personal_hint:
            reasons.append(f"name suggests {column.personal_hint}")
        output.console.print(f"  {column.name}: {', '.join(reasons)}", highlight=False)
    output.console.print("Tag them in shipyard.yaml (see docs/privacy.md):", highlight=False)
    output.console.print(suggestion, highlight=False, markup=False)


def validate(
    context: typer.Context,
    source: Annotated[str, typer.Argument(help="File or SQL source to check.")],
    model: Annotated[
        str | None,
        typer.Option(
            help="Registered model (NAME, NAME@ALIAS, NAME:VERSION): check each row as its "
            "server would, after the model's fitted cleaning."
        ),
    ] = None,
    contract: Annotated[
        Path | None, typer.Option(help="Data contract YAML (contract.yaml), checked as it is.")
    ] = None,
    cleaning: Annotated[
        Path | None,
        typer.Option(help="With --contract: the fitted cleaning (cleaning.json) to apply first."),
    ] = None,
    policy: Annotated[
        str | None, typer.Option(help="fail, warn or quarantine (validation.policy).")
    ] = None,
    quarantine: Annotated[
        str | None,
        typer.Option(help="Side file for bad rows (validation.quarantine_path)."),
    ] = None,
    clean_output: Annotated[
        Path | None, typer.Option("--clean-output", help="Under quarantine: file for good rows.")
    ] = None,
    with_target: Annotated[bool, typer.Option(help="Also check the target column.")] = False,
    encoding: EncodingOption = None,
    header: HeaderOption = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check a data file against a model or a contract; report every violation, apply the policy.

    With --model, each row is checked as the model's server checks a request: cleaned by the
    model's fitted cleaning, then validated (serving.unknown_fields applies). With --contract,
    the values are checked as they are, or after --cleaning when given.
    """
    from shipyard.data.validate import validate_file, validate_records_file

    settings = _validation_settings(config, policy, quarantine)
    options: dict[str, Any] = {
        "policy": settings.policy,
        "quarantine_path": settings.quarantine_path,
        "clean_path": clean_output,
        "with_target": with_target,
        "options": read_options(encoding, header),
    }
    notes: list[str] = []
    if model is not None:
        if contract is not None or cleaning is not None:
            raise ConfigError(
                "Give either --model (a registered model: its contract and cleaning) or "
                "--contract (a contract file, with --cleaning optionally), not both."
            )
        validator, cleaner = _model_checks(model, config, home, registry)
        result = validate_records_file(source, validator, cleaner, **options)
    elif contract is not None and cleaning is not None:
        validator, cleaner = _file_checks(contract, cleaning, config)
        result = validate_records_file(source, validator, cleaner, **options)
    elif contract is not None:
        from shipyard.data.contract import Contract

        notes = _cleaning_beside(contract)
        for note in notes:  # before validating: under --policy fail the check raises
            output.error_console.print(f"[yellow]Note:[/yellow] {note}", highlight=False)
        result = validate_file(source, Contract.load(contract), **options)
    else:
        raise ConfigError(
            "Say what to validate against: --model NAME (a registered model, checked as its "
            "server checks requests) or --contract contract.yaml (a contract file)."
        )
    result.notes.extend(notes)
    _print_validation(result, as_json)


def _validation_settings(config: Path | None, policy: str | None, quarantine: str | None) -> Any:
    """Return the validation settings of the config file, with the command's flags applied."""
    from pydantic import ValidationError

    from shipyard.config import ValidationConfig, load_config

    settings = load_config(config).validation if config else ValidationConfig()
    updates = {
        key: value
        for key, value in (("policy", policy), ("quarantine_path", quarantine))
        if value is not None
    }
    try:
        return ValidationConfig.model_validate({**settings.model_dump(), **updates})
    except ValidationError as error:
        problems = "; ".join(
            f"validation.{'.'.join(map(str, item['loc']))}: {item['msg']}"
            for item in error.errors()
        )
        raise ConfigError(f"Invalid option: {problems}.") from None


def _unknown_fields(config: Path | None) -> str:
    """Return what the server does with fields the contract lacks (serving.unknown_fields)."""
    from shipyard.config import ServingConfig, load_config

    return (load_config(config).serving if config else ServingConfig()).unknown_fields


def _model_checks(
    reference: str, config: Path | None, home: str | None, registry: str | None
) -> tuple[Any, Any]:
    """Return the served predictor's record validator and fitted cleaning."""
    opened = _open_registry(config, home, registry)
    predictor = opened.load_predictor(reference, _unknown_fields(config))
    validator = getattr(predictor, "validator", None)
    if validator is None:
        raise ConfigError(
            f"{reference} answers without a data contract (it is not a model that scores "
            "records), so there is nothing to validate a file against. Pass a tabular or "
            "text model, or --contract contract.yaml."
        )
    return validator, getattr(predictor, "cleaner", None)


def _file_checks(contract: Path, cleaning: Path, config: Path | None) -> tuple[Any, Any]:
    """Return a record validator and a cleaner from a contract file and a cleaning spec file."""
    import json

    from shipyard.data.contract import Contract
    from shipyard.runtime.clean import Cleaner
    from shipyard.runtime.validate import RecordValidator

    try:
        spec = json.loads(cleaning.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"Cannot read the cleaning spec '{cleaning}' ({error}); pass the cleaning.json "
            "of a model bundle."
        ) from error
    return RecordValidator(Contract.load(contract), _unknown_fields(config)), Cleaner(spec)


def _cleaning_beside(contract: Path) -> list[str]:
    """Return a note when a fitted cleaning lies beside the contract but is not applied."""
    spec = contract.parent / "cleaning.json"
    if not spec.is_file():
        return []
    return [
        f"{spec} lies beside the contract and was not applied: values the model's cleaning "
        "accepts ('?' as missing, '1,234' as a number, rare categories as '__rare__') may be "
        f"reported. Add --cleaning {spec} to check as the server does, or validate against "
        "the registered model with --model NAME."
    ]


def _print_validation(result: Any, as_json: bool) -> None:
    if as_json:
        output.print_json(result.as_dict())
        return
    output.console.print(result.report.summary(limit=10), highlight=False)
    if result.quarantine_path:
        output.console.print(
            f"Quarantined {result.bad_rows} rows (with reasons) in {result.quarantine_path}"
        )
    if result.clean_path:
        output.console.print(f"Wrote {result.clean_rows} passing rows to {result.clean_path}")


def print_data_section(data: dict[str, Any]) -> None:
    """Print the data section of a training report: profile, contract, cleaning, leakage."""
    if not data:
        return
    profile = data.get("profile") or {}
    contract = data.get("contract") or {}
    output.console.print("[bold]Data[/bold]")
    if profile:
        kinds = ", ".join(
            f"{kind} {len(names)}"
            for kind, names in sorted(profile.get("semantic_types", {}).items())
        )
        output.console.print(
            f"  profile: {profile.get('rows', 0):,} rows, {profile.get('columns', 0)} columns"
            + (f" ({kinds})" if kinds else "")
            + f", {profile.get('duplicate_rows', 0)} duplicate rows",
            highlight=False,
        )
        for warning in profile.get("warnings", []):
            output.console.print(f"  profile warning: {warning}", highlight=False)
    if contract:
        output.console.print(
            f"  contract: {contract['features']} features "
            f"({len(contract['categorical'])} categorical, {len(contract['nullable'])} nullable)"
            + (f"; ignored: {', '.join(contract['ignored'])}" if contract["ignored"] else ""),
            highlight=False,
        )
    actions = data.get("cleaning", {}).get("actions", [])
    output.console.print(f"  cleaning: {len(actions)} actions" + (":" if actions else ""))
    for action in actions:
        output.console.print(f"    - {action}", highlight=False)
    findings = data.get("leakage", [])
    output.console.print(
        "  leakage: " + (f"{len(findings)} findings:" if findings else "no findings")
    )
    for finding in findings:
        output.console.print(f"    - {finding['level']}: {finding['message']}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the data commands to the root command."""
    app.command()(handles_errors(profile))
    app.command()(handles_errors(validate))
