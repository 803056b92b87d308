"""``shipyard package``, ``shipyard export`` and ``shipyard import``: models to other platforms.

Thin shells over :mod:`shipyard.deploy`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from shipyard.cli import output
from shipyard.cli.commands import (
    ConfigOption,
    HomeOption,
    JsonOption,
    RegistryOption,
    _open_registry,
    handles_errors,
)

__all__ = ["export_app", "register"]

ReferenceArgument = Annotated[
    str, typer.Argument(help="NAME (its champion), NAME@ALIAS or NAME:VERSION.")
]

export_app = typer.Typer(help="Write a registered model in another platform's format.")


@handles_errors
def package(
    context: typer.Context,
    reference: ReferenceArgument,
    output_folder: Annotated[
        Path, typer.Option("--output", "-o", help="New folder for the build context.")
    ],
    k8s: Annotated[
        bool, typer.Option("--k8s", help="Also write Kubernetes and KServe manifests.")
    ] = False,
    image: Annotated[
        str | None, typer.Option(help="Image reference in the manifests (default NAME:VERSION).")
    ] = None,
    base_image: Annotated[str, typer.Option(help="The Dockerfile's base image.")] = (
        "python:3.11-slim"
    ),
    cpu: Annotated[str, typer.Option(help="CPU request and limit per pod ('2', '500m').")] = "1",
    memory: Annotated[str, typer.Option(help="Memory request and limit per pod.")] = "1Gi",
    replicas: Annotated[int, typer.Option(min=1, help="Replicas (autoscaler minimum).")] = 1,
    max_replicas: Annotated[int, typer.Option(min=1, help="Autoscaler maximum.")] = 4,
    download_wheels: Annotated[
        bool,
        typer.Option(help="Put the pinned wheels in the context: the image builds offline."),
    ] = False,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Write a container build context (Dockerfile, pinned wheels, the bundle) for a version."""
    from shipyard.deploy.container import write_context
    from shipyard.deploy.kubernetes import KubernetesSettings

    opened = _open_registry(config, home, registry)
    try:
        version = opened.resolve(reference)
        settings = None
        if k8s:
            settings = KubernetesSettings(
                image=image or f"{version.name}:{version.version}",
                cpu=cpu,
                memory=memory,
                replicas=replicas,
                max_replicas=max_replicas,
            )
        with output.error_console.status(f"Packaging {version.reference}"):
            built = write_context(
                opened,
                version.reference,
                output_folder,
                base_image=base_image,
                kubernetes=settings,
                download_wheels=download_wheels,
            )
    finally:
        opened.close()
    if as_json:
        output.print_json(
            {
                "folder": str(built.folder),
                "reference": built.reference,
                "manifest_sha256": built.manifest_sha256,
                "requirements": built.requirements,
                "manifests": [str(path) for path in built.manifests],
            }
        )
        return
    output.console.print(
        f"Wrote the build context for {built.reference} to {built.folder} "
        f"({len(built.requirements)} pinned packages"
        + (f", {len(built.manifests)} Kubernetes manifests" if built.manifests else "")
        + f"). Build it with: docker build -t {version.name}:{version.version} {built.folder}",
        highlight=False,
    )


@export_app.command("onnx")
@handles_errors
def export_onnx(
    context: typer.Context,
    reference: ReferenceArgument,
    data: Annotated[
        str,
        typer.Option(
            help="Held-out rows for the parity check: CSV/Parquet or dataset:NAME:SPLIT."
        ),
    ],
    output_file: Annotated[
        Path | None, typer.Option("--output", "-o", help="Where to write the .onnx file.")
    ] = None,
    rows: Annotated[int, typer.Option(min=1, help="Held-out rows compared.")] = 1000,
    register_version: Annotated[
        bool,
        typer.Option("--register", help="Also register it as a version served by ONNX Runtime."),
    ] = False,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export preprocessing and model as one ONNX graph, checked within 1e-5 of the model."""
    from shipyard.data.sources import read_table
    from shipyard.deploy.onnx_export import export_onnx as run_export
    from shipyard.errors import ConfigError
    from shipyard.training.export import frame_to_records

    if output_file is None and not register_version:
        raise ConfigError("Say where the graph goes: --output FILE, --register, or both.")
    records = frame_to_records(read_table(data).head(rows))
    opened = _open_registry(config, home, registry)
    try:
        with output.error_console.status(f"Exporting {reference} to ONNX"):
            done = run_export(opened, reference, records, output_file, register=register_version)
    finally:
        opened.close()
    result = {
        "source": done.source,
        "rows": done.rows,
        "max_gap": done.max_gap,
        "path": str(done.path) if done.path else None,
        "registered": done.registered.reference if done.registered else None,
    }
    if as_json:
        output.print_json(result)
        return
    where = " and ".join(
        part
        for part in (
            f"wrote {done.path}" if done.path else "",
            f"registered {result['registered']} (serve it to use ONNX Runtime)"
            if done.registered
            else "",
        )
        if part
    )
    output.console.print(
        f"{done.source}: the ONNX graph answers within {done.max_gap:.2g} of the model on "
        f"{done.rows} held-out rows; {where}.",
        highlight=False,
    )


@export_app.command("mlflow")
@handles_errors
def export_mlflow(
    context: typer.Context,
    reference: ReferenceArgument,
    output_folder: Annotated[
        Path, typer.Option("--output", "-o", help="New folder for the MLflow model.")
    ],
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
) -> None:
    """Write a version as an MLflow model from code (no pickle) that verifies the bundle."""
    from shipyard.deploy.mlflow_export import export_mlflow as run_export

    opened = _open_registry(config, home, registry)
    try:
        with output.error_console.status(f"Exporting {reference} to MLflow"):
            version = run_export(opened, reference, output_folder)
    finally:
        opened.close()
    output.console.print(
        f"Wrote {version.reference} as an MLflow model to {output_folder}; serve it with: "
        f"mlflow models serve -m {output_folder} --env-manager local",
        highlight=False,
    )


@handles_errors
def import_model(
    context: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name to register it under.")],
    model_file: Annotated[Path, typer.Option("--model", help="The model file.")],
    kind: Annotated[str, typer.Option(help="lightgbm (text), xgboost (JSON) or onnx.")],
    sample: Annotated[
        str, typer.Option(help="Labelled sample rows (CSV/Parquet): the contract comes from it.")
    ],
    target: Annotated[str, typer.Option(help="The label column of the sample.")],
    classes: Annotated[
        list[str] | None,
        typer.Option("--class", help="Class label in the model's output order, repeatable."),
    ] = None,
    config: ConfigOption = None,
    home: HomeOption = None,
    registry: RegistryOption = None,
    as_json: JsonOption = False,
) -> None:
    """Register a LightGBM, XGBoost or ONNX model trained elsewhere, checked on the sample."""
    from shipyard.data.sources import read_table
    from shipyard.deploy.imports import import_model as run_import

    frame = read_table(sample)
    opened = _open_registry(config, home, registry)
    try:
        done = run_import(opened, name, model_file, kind, frame, target, classes)
    finally:
        opened.close()
    if as_json:
        output.print_json({**done.version.as_dict(), "features": done.features})
        return
    aliases = f" ({', '.join(done.version.aliases)})" if done.version.aliases else ""
    output.console.print(
        f"Registered {done.version.reference}{aliases}: a {done.version.task} model on "
        f"{len(done.features)} features, within {done.max_gap:.2g} of {kind}'s own answers on "
        f"the sample. Serve it with: shipyard serve {done.version.reference}",
        highlight=False,
    )


def register(app: typer.Typer) -> None:
    """Add ``package``, ``export`` and ``import`` to the root command."""
    app.command("package")(package)
    app.add_typer(export_app, name="export")
    app.command("import")(import_model)
