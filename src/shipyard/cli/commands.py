"""The ``shipyard`` command: each command parses its flags and calls one library function.

Flags map to config keys (``shipyard.config.CLI_FLAGS``), so a run can be repeated from the
config saved with the model. Domain errors print one line and exit 1; usage errors exit 2;
``--debug`` shows tracebacks.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from shipyard.cli import output
from shipyard.errors import ConfigError, ShipyardError

if TYPE_CHECKING:
    from shipyard.config import PipelineConfig, RegistryConfig

# The config module (pydantic, YAML) is imported inside the commands that read a config, so
# that `shipyard --help` and every command's help start without it.

__all__ = ["app", "main"]

app = typer.Typer(
    name="shipyard",
    help="Carry a model from raw data to a served service.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
models_app = typer.Typer(help="List, inspect and promote registered models.", no_args_is_help=True)
app.add_typer(models_app, name="models")

F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(command: F) -> F:
    """Turn shipyard errors into one line on stderr and exit code 1 (tracebacks with --debug).

    The command must take ``context: typer.Context`` first: the root's ``--debug`` is read
    from it, so no global state is needed.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ShipyardError as error:
            context: Any = kwargs.get("context", args[0] if args else None)
            # Typer passes its own click Context, which is not always a typer.Context.
            root = context.find_root() if hasattr(context, "find_root") else None
            if root is not None and root.params.get("debug"):
                raise
            from rich.markup import escape

            # Escaped: a message naming an extra ('shipyard[granian]') is not markup.
            output.error_console.print(
                f"[bold red]Error:[/bold red] {escape(str(error))}", highlight=False
            )
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


@app.callback()
def root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    """Carry a model from raw data to a served service."""


# -- shared options -------------------------------------------------------------------------

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Pipeline spec (shipyard.yaml).")
]
HomeOption = Annotated[str | None, typer.Option(help="Registry folder (registry.home).")]
RegistryOption = Annotated[
    str | None, typer.Option("--registry", help="Registry database URL (registry.url).")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
EngineOption = Annotated[
    str | None,
    typer.Option(help="'local' or a Dask scheduler, dask://HOST:PORT (engine.url)."),
]
EncodingOption = Annotated[
    str | None,
    typer.Option(help="Encoding of a text file, e.g. cp1252 (default: UTF-8, checked)."),
]
HeaderOption = Annotated[
    bool | None,
    typer.Option(
        "--header/--no-header",
        help="Whether a text file's first row names the columns (default: detected).",
    ),
]


def read_options(encoding: str | None, header: bool | None) -> Any:
    """Return the reader's options from the ``--encoding`` and ``--header`` flags."""
    from shipyard.data.sources import ReadOptions

    return ReadOptions(encoding, header)


def engine_config(config: Path | None, url: str | None) -> Any:
    """Return the ``engine`` section: the config file's (or defaults), with ``--engine`` set."""
    from shipyard.config import CLI_FLAGS, EngineConfig, load_config, load_config_dict

    default = Path("shipyard.yaml")
    source = config if config is not None else (default if default.is_file() else None)
    settings = load_config(source).engine if source is not None else EngineConfig()
    if url is None:
        return settings
    raw = {**settings.model_dump(), CLI_FLAGS["engine"].removeprefix("engine."): url}
    return load_config_dict(
        {"name": "engine", "data": {"source": "-", "target": "-"}, "engine": raw}
    ).engine


def _parse_sets(assignments: list[str]) -> dict[str, Any]:
    import yaml

    overrides = {}
    for assignment in assignments:
        key, equals, value = assignment.partition("=")
        if not equals or not key:
            raise ConfigError(
                f"--set expects KEY=VALUE, got '{assignment}'; for example "
                "--set training.cv_folds=3."
            )
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def _registry_config(config: Path | None, home: str | None, url: str | None) -> RegistryConfig:
    from shipyard.config import RegistryConfig, load_config

    if config is not None:
        base = load_config(config).registry
    else:
        default = Path("shipyard.yaml")
        base = load_config(default).registry if default.is_file() else RegistryConfig()
    updates = {key: value for key, value in (("home", home), ("url", url)) if value is not None}
    return base.model_copy(update=updates) if updates else base


def _open_registry(config: Path | None, home: str | None, url: str | None) -> Any:
    from shipyard.registry.store import Registry

    return Registry.from_config(_registry_config(config, home, url))


# -- train / evaluate -----------------------------------------------------------------------


def build_config(config: Path | None, flags: dict[str, Any], sets: list[str]) -> PipelineConfig:
    """Merge a config file, flags (by :data:`CLI_FLAGS`) and ``--set`` overrides."""
    from shipyard.config import CLI_FLAGS, apply_overrides, load_config, load_config_dict

    overrides = {
        CLI_FLAGS[flag]: value
        for flag, value in flags.items()
        if value is not None and value != [] and value != ()
    }
    overrides.update(_parse_sets(sets))
    if config is not None:
        return load_config(config, overrides)
    default = Path("shipyard.yaml")
    if default.is_file():
        return load_config(default, overrides)
    raw = apply_overrides({}, overrides)
    source = raw.get("data", {}).get("source")
    if source and "name" not in raw:
        stem = Path(str(source).split(":")[-1]).name.split(".")[0]
        raw["name"] = "".join(c if c.isalnum() or c in "._-" else "-" for c in stem) or "model"
    if "data" not in raw:
        raise ConfigError(
            "Nothing to train: pass --config shipyard.yaml, or --data FILE and --target COLUMN."
        )
    _default_target(raw)
    return load_config_dict(raw)


def _default_target(raw: dict[str, Any]) -> None:
    """Fill ``data.target`` from the task when the command line names none (class folders)."""
    data = raw["data"]
    if "target" in data or "task" not in raw:
        return
    from shipyard.tasks.base import task_for_config_name

    default = task_for_config_name(str(raw["task"])).default_target
    if default is not None:
        data["target"] = default


@app.command()
@handles_errors
def train(
    context: typer.Context,
    config: ConfigOption = None,
    data: Annotated[
        str | None, typer.Option(help="CSV/Parquet file or dataset:NAME (data.source).")
    ] = None,
    target: Annotated[str | None, typer.Option(help="Column to predict (data.target).")] = None,
    test_data: Annotated[
        str | None, typer.Option(help="Separate labelled test file (data.test_source).")
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="Encoding of text files, e.g. cp1252 (data.encoding; default UTF-8)."),
    ] = None,
    header: Annotated[
        bool | None,
        typer.Option(
            "--header/--no-header",
            help="Whether text files start with a header row (data.header; default: detected).",
        ),
    ] = None,
    unknown_categories: Annotated[
        str | None,
        typer.Option(
            help="error, as_missing or as_rare: scoring categories training never saw "
            "(data.unknown_categories)."
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Model name (name).")] = None,
    task: Annotated[
        str | None, typer.Option(help="auto, binary, multiclass or regression (task).")
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Selection metric (metric).")] = None,
    time_budget: Annotated[
        float | None,
        typer.Option(
            help="Seconds from start to registered model, evaluation included "
            "(training.time_budget)."
        ),
    ] = None,
    cv_folds: Annotated[int | None, typer.Option(help="Folds (training.cv_folds).")] = None,
    n_trials: Annotated[
        int | None, typer.Option(help="Settings scored at most (training.n_trials).")
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(help="Exclude slower models, ms per record (training.max_latency_ms)."),
    ] = None,
    models: Annotated[
        list[str] | None,
        typer.Option("--model", help="Candidate family, repeatable (training.models)."),
    ] = None,
    drop: Annotated[
        list[str] | None,
        typer.Option(help="Column never used as a feature, repeatable (data.drop)."),
    ] = None,
    sensitive: Annotated[
        list[str] | None, typer.Option(help="Sensitive column, repeatable (sensitive).")
    ] = None,
    personal: Annotated[
        list[str] | None,
        typer.Option(help="Column holding personal data, repeatable (data.personal)."),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Random seed (seed).")] = None,
    fairness_mitigation: Annotated[
        str | None,
        typer.Option(
            help="'threshold': also register a child version with a decision threshold per "
            "sensitive group, and serve it (fairness.apply)."
        ),
    ] = None,
    engine: EngineOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    sets: Annotated[
        list[str] | None, typer.Option("--set", help="Any config key, as KEY=VALUE (repeatable).")
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Train, evaluate and register a model from a data file or a shipyard.yaml."""
    from shipyard.pipeline import train as run_training

    flags = {
        "data": data,
        "target": target,
        "test_data": test_data,
        "encoding": encoding,
        "header": header,
        "unknown_categories": unknown_categories,
        "name": name,
        "task": task,
        "metric": metric,
        "time_budget": time_budget,
        "cv_folds": cv_folds,
        "n_trials": n_trials,
        "max_latency_ms": max_latency_ms,
        "models": models,
        "drop": drop,
        "sensitive": sensitive,
        "personal": personal,
        "seed": seed,
        "fairness_mitigation": fairness_mitigation,
        "engine": engine,
        "home": home,
        "registry": registry,
    }
    from shipyard.cli.progress import training_reporter

    # The budget counts from the start of the `shipyard` process (main() records it); called
    # in-process (tests, CliRunner), from now.
    started_at = (context.find_root().obj or {}).get("started_at")
    pipeline = build_config(config, flags, sets or [])
    with training_reporter(plain=as_json) as report:
        run = run_training(pipeline, report=report, started_at=started_at)
    if as_json:
        output.print_json(run.as_dict())
    else:
        output.print_train_run(run.as_dict())
        data_commands.print_data_section(run.data)


@app.command()
@handles_errors
def evaluate(
    context: typer.Context,
    reference: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME:VERSION.")],
    data: Annotated[str, typer.Option(help="Labelled CSV/Parquet file or dataset:NAME:SPLIT.")],
    encoding: EncodingOption = None,
    header: HeaderOption = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Score a registered model on labelled data: metrics with confidence intervals."""
    from shipyard.pipeline import evaluate as run_evaluation

    result = run_evaluation(
        _open_registry(config, home, registry),
        reference,
        data,
        options=read_options(encoding, header),
    )
    if as_json:
        output.print_json(result.as_dict())
        return
    output.console.print(
        output.metrics_table(
            f"{result.version.reference} on {result.rows} rows of {data}",
            result.as_dict()["metrics"],
        )
    )
    for note in result.notes:
        output.console.print(f"Note: {note}", highlight=False)


# -- models ---------------------------------------------------------------------------------


@models_app.command("list")
@handles_errors
def models_list(
    context: typer.Context,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """List registered models."""
    from rich.table import Table

    summaries = _open_registry(config, home, registry).models()
    if as_json:
        output.print_json(summaries)
        return
    if not summaries:
        output.console.print("No models registered yet; train one with 'shipyard train'.")
        return
    table = Table()
    for column in ("name", "task", "versions", "latest", "aliases", "created"):
        table.add_column(column)
    for item in summaries:
        aliases = ", ".join(f"{alias} -> {version}" for alias, version in item["aliases"].items())
        table.add_row(
            item["name"],
            item["task"],
            str(item["versions"]),
            str(item["latest"]),
            aliases,
            item["created_at"][:19],
        )
    output.console.print(table)


@models_app.command("show")
@handles_errors
def models_show(
    context: typer.Context,
    reference: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME:VERSION.")],
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show one version: metrics, parameters, lineage, bundle."""
    opened = _open_registry(config, home, registry)
    version = opened.resolve(reference)
    data = version.as_dict()
    data["events"] = [
        event for event in opened.events(version.name) if event["version"] == version.version
    ]
    if as_json:
        output.print_json(data)
        return
    output.console.print(
        f"[bold]{version.reference}[/bold] ({version.task}) "
        f"aliases: {', '.join(version.aliases) or 'none'}"
    )
    output.console.print(
        f"created {data['created_at']}, data fingerprint "
        f"{version.data_fingerprint}, parent {version.parent_version}"
    )
    output.console.print(f"parameters: {version.params}")
    test_metrics = version.metrics.get("test", {})
    if test_metrics:
        output.console.print(output.metrics_table("Test metrics", test_metrics))
    output.console.print(
        f"bundle: {version.bundle_path} (manifest sha256 {version.manifest_sha256})"
    )


@models_app.command("promote")
@handles_errors
def models_promote(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to promote.")],
    alias: Annotated[str, typer.Option(help="Alias to move.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    override_fairness: Annotated[
        bool, typer.Option(help="Promote despite breached fairness thresholds (needs --reason).")
    ] = False,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Point an alias (default: champion) at a version; the move is logged."""
    promoted = _open_registry(config, home, registry).promote(
        name, version, alias, reason, override_fairness=override_fairness
    )
    output.console.print(f"{alias} -> {promoted.reference}")


@models_app.command("rollback")
@handles_errors
def models_rollback(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Annotated[str, typer.Option(help="Alias to move back.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Point an alias back at the version it held before its latest move; the move is logged."""
    restored = _open_registry(config, home, registry).rollback(name, alias, reason)
    output.console.print(f"{alias} -> {restored.reference} (rolled back)")


@models_app.command("events")
@handles_errors
def models_events(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    last: Annotated[int, typer.Option(min=1, help="Show the latest N events.")] = 30,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show the audit log: registrations, promotions, gates, canaries, rollbacks, alerts."""
    events = _open_registry(config, home, registry).events(name)[-last:]
    if as_json:
        output.print_json(events)
        return
    output.console.print(output.events_table(name, events))


# -- serve / predict ------------------------------------------------------------------------


def keys_file_for(config: Path | None, home: str | None, keys_file: Path | None) -> Path:
    """Return the API keys file: the flag, else ``serving.keys_file``, else the registry home."""
    from shipyard.config import ServingConfig, load_config
    from shipyard.serving.keys import default_keys_file

    if keys_file is not None:
        return keys_file
    default = Path("shipyard.yaml")
    source = config if config is not None else (default if default.is_file() else None)
    settings = load_config(source).serving if source is not None else ServingConfig()
    if settings.keys_file:
        return Path(settings.keys_file)
    return default_keys_file(_registry_config(config, home, None).home)


@app.command()
@handles_errors
def serve(
    context: typer.Context,
    reference: Annotated[
        str, typer.Argument(help="NAME (its champion), NAME@ALIAS or NAME:VERSION.")
    ],
    host: Annotated[str | None, typer.Option(help="Interface (serving.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (serving.port).")] = None,
    workers: Annotated[
        int | None, typer.Option(help="Processes, one per core at most (serving.workers).")
    ] = None,
    server: Annotated[
        str | None,
        typer.Option(help="HTTP server: uvicorn or granian (serving.server)."),
    ] = None,
    no_auth: Annotated[
        bool, typer.Option("--no-auth", help="Serve without API keys (serving.auth=false).")
    ] = False,
    keys_file: Annotated[
        Path | None, typer.Option(help="API keys file (serving.keys_file).")
    ] = None,
    request_timeout: Annotated[
        float | None, typer.Option(help="Seconds per request (serving.request_timeout).")
    ] = None,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Origin allowed by CORS, repeatable (serving.cors_origins)."),
    ] = None,
    batching: Annotated[
        str | None, typer.Option(help="auto, on or off (serving.batching).")
    ] = None,
    poll_seconds: Annotated[
        float | None,
        typer.Option(help="Seconds between alias checks; 0: no hot swap (serving.poll_seconds)."),
    ] = None,
    canary: Annotated[
        str | None, typer.Option(help="Canary version reference (serving.canary).")
    ] = None,
    canary_share: Annotated[
        float | None, typer.Option(help="Share of traffic for the canary (serving.canary_share).")
    ] = None,
    shadow: Annotated[
        str | None, typer.Option(help="Shadow version reference (serving.shadow).")
    ] = None,
    access_log: Annotated[
        bool, typer.Option("--access-log", help="One JSON line per request (serving.access_log).")
    ] = False,
    rate_limit: Annotated[
        float | None,
        typer.Option(
            help="Requests per second per API key, per worker; 0: no limit "
            "(serving.rate_limit.requests_per_second)."
        ),
    ] = None,
    rate_burst: Annotated[
        int | None,
        typer.Option(help="Requests a key may send at once (serving.rate_limit.burst)."),
    ] = None,
    ui: Annotated[
        bool | None,
        typer.Option("--ui/--no-ui", help="Mount the web UI under /ui (serving.ui)."),
    ] = None,
    insecure_cookie: Annotated[
        bool,
        typer.Option(
            "--insecure-cookie",
            help="Send the UI's cookie over plain HTTP too (serving.ui_secure_cookie=false).",
        ),
    ] = False,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Serve a registered model over HTTP after verifying its bundle (the web UI at /ui)."""
    from shipyard.config import CLI_FLAGS, ServingConfig, apply_overrides, load_config
    from shipyard.errors import require

    require("uvicorn", "serve")
    from shipyard.serving import KeyStore, build_app, run_server
    from shipyard.serving.server import mounts_from_spec, worker_spec

    loaded = load_config(config) if config else None
    settings = loaded.serving if loaded else ServingConfig()
    monitoring = loaded.monitoring if loaded else None
    flags = {
        "host": host,
        "port": port,
        "workers": workers,
        "server": server,
        "no_auth": False if no_auth else None,
        "keys_file": str(keys_file) if keys_file else None,
        "request_timeout": request_timeout,
        "cors_origin": tuple(cors_origin) if cors_origin else None,
        "batching": batching,
        "poll_seconds": poll_seconds,
        "canary": canary,
        "canary_share": canary_share,
        "shadow": shadow,
        "access_log": True if access_log else None,
        "rate_limit": rate_limit,
        "rate_burst": rate_burst,
        "ui": ui,
        "insecure_cookie": False if insecure_cookie else None,
    }
    updates = {CLI_FLAGS[flag].removeprefix("serving."): value for flag, value in flags.items()}
    settings = ServingConfig.model_validate(apply_overrides(settings.model_dump(), updates))
    if settings.server == "granian":
        require("granian", "granian")  # before loading anything: the extra may be missing
    opened = _open_registry(config, home, registry)
    keys = None
    keys_path = None
    if settings.auth:
        keys_path = keys_file_for(config, home, keys_file)
        keys = KeyStore(keys_path)
        if not keys.keys():
            record, key = keys.create("created by the first 'shipyard serve'")
            output.error_console.print(
                f"Created API key {record.id} (shown once; stored hashed in {keys_path}):"
            )
            output.console.print(key, highlight=False)
    mounts_factory = None
    if settings.ui and settings.auth:
        from shipyard.ui.mounted import MOUNTS_FACTORY

        mounts_factory = MOUNTS_FACTORY
    elif settings.ui:
        output.error_console.print(
            "The web UI is not mounted: it logs people in with API keys, and serving.auth "
            "is off. Serve with keys, or run 'shipyard ui'."
        )
    spec = worker_spec(opened, reference, settings, keys_path, monitoring, mounts_factory)
    app_ = build_app(
        opened,
        reference,
        settings,
        keys,
        monitoring=monitoring,
        own_auth_mounts=mounts_from_spec(opened, spec),
    )
    output.error_console.print(
        f"Serving {reference} on http://{settings.host}:{settings.port}"
        f" with {settings.workers} {settings.server} worker(s), API keys "
        f"{'required' if settings.auth else 'OFF'} (OpenAPI at /openapi.json); Ctrl+C stops."
    )
    if mounts_factory:
        output.error_console.print(
            f"Web UI: http://{settings.host}:{settings.port}/ui/ (log in with an API key)."
        )
    run_server(app_, settings.host, settings.port, settings=settings, worker_spec=spec)


@app.command()
@handles_errors
def predict(
    context: typer.Context,
    reference: Annotated[str, typer.Argument(help="NAME, NAME@ALIAS or NAME:VERSION.")],
    data: Annotated[
        Path, typer.Option(help="CSV or Parquet file, or a directory of Parquet files, to score.")
    ],
    output_path: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="New CSV or Parquet file (a new directory for a directory)."
        ),
    ],
    chunk_size: Annotated[
        int | None, typer.Option(min=1, help="Rows per chunk (serving.chunk_size).")
    ] = None,
    invalid_rows: Annotated[
        str,
        typer.Option(
            help="quarantine: rows that break the contract go to --rejected, the rest are "
            "scored; fail: the first such row stops the run."
        ),
    ] = "quarantine",
    rejected: Annotated[
        Path | None,
        typer.Option(help="Side file for rejected rows (default: OUTPUT.rejected.csv)."),
    ] = None,
    encoding: EncodingOption = None,
    header: HeaderOption = None,
    engine: EngineOption = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Score a file in chunks, or a directory of Parquet files, through the served path.

    Rows that break the model's contract are written, with their reasons, to a side file
    (OUTPUT.rejected.csv) and the others are scored; the exit status is 0 when any row was
    scored. --invalid-rows fail stops at the first such row instead.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from shipyard.config import ServingConfig, load_config
    from shipyard.pipeline.scoring import count_rows, score_file

    if invalid_rows not in ("quarantine", "fail"):
        raise ConfigError(f"--invalid-rows must be quarantine or fail, got '{invalid_rows}'.")
    settings = load_config(config).serving if config else ServingConfig()
    chunk_size = chunk_size or settings.chunk_size
    engine_settings = engine_config(config, engine)
    if data.is_dir():
        _predict_directory(config, home, registry, reference, data, output_path, engine_settings)
        return
    if engine_settings.kind != "local":
        raise ConfigError(
            f"--engine {engine_settings.url} scores a directory of Parquet files (one "
            f"partition each); '{data}' is a single file. Pass a directory, or drop --engine."
        )
    predictor = _open_registry(config, home, registry).load_predictor(reference)
    total = count_rows(data) if data.is_file() else None
    side_file = None
    if invalid_rows == "quarantine":
        side_file = rejected or output_path.with_name(f"{output_path.name}.rejected.csv")
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=output.error_console,
    ) as progress:
        task_id = progress.add_task(f"scoring {data.name}", total=total)
        result = score_file(
            predictor,
            data,
            output_path,
            chunk_size=chunk_size,
            progress=lambda n: progress.advance(task_id, n),
            options=read_options(encoding, header),
            rejected=side_file,
        )
    output.console.print(f"Scored {result.rows} rows into {output_path}")
    if result.rejected:
        output.console.print(
            f"Rejected {result.rejected} rows that break the model's contract; they are in "
            f"{result.rejected_path} with the reasons (_violations).",
            highlight=False,
        )
    if result.unknown_categories:
        note = predictor.unknown.describe(result.unknown_categories)
        output.console.print(f"Note: {note}", highlight=False)


def _predict_directory(
    config: Path | None,
    home: str | None,
    registry: str | None,
    reference: str,
    data: Path,
    output_path: Path,
    engine_settings: Any,
) -> None:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    from shipyard.engines import open_engine
    from shipyard.engines.directory import count_partition_rows, list_partitions
    from shipyard.pipeline.partition_scoring import score_directory

    version = _open_registry(config, home, registry).resolve(reference)
    total = count_partition_rows(list_partitions(data))
    with (
        open_engine(engine_settings) as opened,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=output.error_console,
        ) as progress,
    ):
        task_id = progress.add_task(f"scoring {data.name} on {opened.describe()}", total=total)
        result = score_directory(
            version,
            data,
            output_path,
            opened,
            progress=lambda n: progress.advance(task_id, n),
        )
    output.console.print(
        f"Scored {result.total_rows} rows in {len(result.files)} files into {output_path}"
    )


# -- demo -----------------------------------------------------------------------------------


@app.command()
@handles_errors
def demo(
    context: typer.Context,
    which: Annotated[
        str,
        typer.Argument(
            help="Which demo: adult (tabular), spam (text), pneumonia (images), recommend, "
            "drift (the closed loop on bike sharing), forecast (daily bike rentals, 14 days "
            "ahead), or notes (answers from shipyard's own docs)."
        ),
    ] = "adult",
    time_budget: Annotated[
        float | None,
        typer.Option(
            help="Seconds from start to registered model, evaluation included "
            "(training.time_budget)."
        ),
    ] = None,
    home: HomeOption = None,
    as_json: JsonOption = False,
) -> None:
    """Train on bundled real data, register, serve, and call the server over HTTP."""
    from shipyard.errors import require

    require("uvicorn", "serve")
    from shipyard.demos.adult import run_demo

    overrides = {
        key: value
        for key, value in (("training.time_budget", time_budget), ("registry.home", home))
        if value is not None
    }
    if which != "adult":
        from shipyard.cli.demos import run_named_demo

        run_named_demo(which, overrides, as_json)
        return
    result = run_demo(overrides, report=output.reporter())
    if as_json:
        output.print_json(result.as_dict())
        return
    output.print_train_run({**result.run.as_dict(), "fairness": result.fairness_verdict})
    data_commands.print_data_section(result.run.data)
    output.console.print(f"\nAnswers from {result.url} for 3 real records of the Adult test set:")
    for call in result.calls:
        record, answer = call["record"], call["answer"]
        probability = max(answer["probabilities"].values())
        output.console.print(
            f"  age {record['age']}, {record['education']}, {record['occupation']}, "
            f"{record['hours-per-week']} h/week -> [bold]{answer['prediction']}[/bold] "
            f"(p={probability:.3f}; actual {call['actual']}; from {answer['model']}:"
            f"{answer['version']})",
            highlight=False,
        )
    output.console.print("Server stopped.")
    if result.cards:
        output.console.print(f"Model card: {', '.join(result.cards)}", highlight=False)


from shipyard.cli import evaluation as _evaluation_commands  # noqa: E402

_evaluation_commands.register(app, models_app)


# The data commands (profile, validate) live in their own module.
from shipyard.cli import data as data_commands  # noqa: E402

data_commands.register(app)


def main() -> None:
    """Entry point of the ``shipyard`` script.

    ``shipyard train`` ends its process as soon as its output is flushed: tearing the
    interpreter down (freeing every loaded library's objects) took 2-4 s on a loaded 2-core
    machine, time that the training budget promises to the user.
    """
    from shipyard.cli.progress import process_started_at

    try:
        app(prog_name="shipyard", obj={"started_at": process_started_at()})
    except SystemExit as stop:
        if sys.argv[1:2] == ["train"] and (stop.code is None or isinstance(stop.code, int)):
            _exit_at_once(stop.code or 0)
        raise


def _exit_at_once(code: int) -> None:
    """Flush the output and logs, then end the process without the interpreter's teardown."""
    import logging
    import os

    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(code)


from shipyard.cli.keys import keys_app  # noqa: E402  (it imports this module's helpers)

app.add_typer(keys_app, name="keys")

from shipyard.cli import monitor as _monitor_commands  # noqa: E402

_monitor_commands.register(app)

from shipyard.cli import watch as _watch_commands  # noqa: E402

_watch_commands.register(app)

from shipyard.cli import tasks as _task_commands  # noqa: E402

_task_commands.register(app)

from shipyard.cli import stream as _stream_commands  # noqa: E402

_stream_commands.register(app)
from shipyard.cli import forecast as _forecast_commands  # noqa: E402

_forecast_commands.register(app)
from shipyard.cli import ask as _ask_commands  # noqa: E402

_ask_commands.register(app)

from shipyard.cli.log import log_app  # noqa: E402  (it imports this module's helpers)

app.add_typer(log_app, name="log")

from shipyard.cli.db import db_app  # noqa: E402  (it imports this module's helpers)

app.add_typer(db_app, name="db")

from shipyard.cli import deploy as _deploy_commands  # noqa: E402

_deploy_commands.register(app)
from shipyard.cli import ui as _ui_commands  # noqa: E402

_ui_commands.register(app)
