"""``shipyard package``: a container build context for one registered version.

The context holds everything ``docker build`` (or ``podman build``) needs; the build fetches
the pinned wheels (not even those with ``download_wheels``) and the Debian packages a wheel
loads (LightGBM's OpenMP runtime), nothing else::

    Dockerfile          slim Python base, a venv, the pinned wheels, a non-root user,
                        HEALTHCHECK on /ready, the entry point
    requirements.txt    exactly the packages serving this bundle needs, pinned
    wheels/             shipyard itself, as installed here (and, with
                        ``download_wheels``, every pinned wheel: an offline build)
    registry/           a registry holding only this version, its bundle byte for byte
                        (same version number, same manifest hash: verified when the image is
                        built and again when it starts)
    README.md           how to build, run and call it
    k8s/                with ``kubernetes=True``: see :mod:`shipyard.deploy.kubernetes`
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from shipyard.deploy.kubernetes import USER_ID, KubernetesSettings, write_manifests
from shipyard.deploy.requirements import pinned_requirements, serving_extras
from shipyard.deploy.wheel import write_wheel
from shipyard.errors import ConfigError
from shipyard.registry.store import DEFAULT_ALIAS, ModelVersion, Registry

__all__ = ["BASE_IMAGE", "BuildContext", "write_context"]

BASE_IMAGE = "python:3.11-slim"
PORT = 8080


@dataclass(frozen=True)
class BuildContext:
    """What :func:`write_context` wrote."""

    folder: Path
    reference: str
    manifest_sha256: str
    requirements: dict[str, str]
    wheel: Path
    manifests: tuple[Path, ...] = ()


def _model_formats(manifest: dict[str, object]) -> list[str]:
    model = manifest.get("model")
    return [str(model.get("format", ""))] if isinstance(model, dict) else []


def _download_wheels(requirements: Path, folder: Path) -> None:
    """Fetch the pinned wheels into the context, so that the image builds offline."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--only-binary=:all:", "--dest", str(folder), "-r", str(requirements)]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    if run.returncode != 0:
        raise ConfigError(
            f"pip could not download the pinned wheels ({run.stderr.strip().splitlines()[-1:]}); "
            "check the package index, or package without --download-wheels."
        )


SYSTEM_PACKAGES = {"lightgbm": ("libgomp1",)}
"""Debian packages a pinned wheel needs beside it (LightGBM's OpenMP runtime)."""


def _system_packages(requirements: dict[str, str]) -> str:
    needed = sorted({item for name in requirements for item in SYSTEM_PACKAGES.get(name, ())})
    if not needed:
        return ""
    return f"""
# Shared libraries the wheels load (not part of the slim base).
RUN apt-get update \\
    && apt-get install -y --no-install-recommends {" ".join(needed)} \\
    && rm -rf /var/lib/apt/lists/*
"""


def _dockerfile(
    version: ModelVersion, base_image: str, offline: bool, requirements: dict[str, str]
) -> str:
    healthcheck = (
        "import os, urllib.request; "
        "urllib.request.urlopen(f'http://127.0.0.1:{os.environ[\"PORT\"]}/ready', timeout=2)"
    )
    healthcheck_command = json.dumps(["python", "-c", healthcheck])
    return f"""\
# A shipyard serving image for {version.reference} (written by `shipyard package`).
# Build: docker build -t {version.name}:{version.version} .
ARG BASE_IMAGE={base_image}
FROM ${{BASE_IMAGE}}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \\
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
{_system_packages(requirements)}
# The pinned wheels (no dependency resolution in the image: the list is complete), then
# shipyard itself from the context.
COPY requirements.txt /tmp/context/requirements.txt
COPY wheels/ /tmp/context/wheels/
RUN python3 -m venv /opt/shipyard \\
    && /opt/shipyard/bin/pip install --no-deps --only-binary=:all: \\
        --find-links /tmp/context/wheels{" --no-index" if offline else ""} \\
        -r /tmp/context/requirements.txt \\
    && /opt/shipyard/bin/pip install --no-deps /tmp/context/wheels/shipyard-*.whl \\
    && rm -rf /tmp/context

# A user without a login or a home of its own; it owns only the registry folder (the
# prediction log and drift windows are written there).
RUN groupadd --system --gid {USER_ID} shipyard \\
    && useradd --system --uid {USER_ID} --gid shipyard --no-create-home \\
        --home-dir /srv/shipyard --shell /usr/sbin/nologin shipyard
COPY --chown=shipyard:shipyard registry/ /srv/shipyard/registry/

ENV PATH=/opt/shipyard/bin:$PATH \\
    SHIPYARD_MODEL={version.reference} \\
    SHIPYARD_HOME=/srv/shipyard/registry \\
    SHIPYARD_CACHE_DIR=/srv/shipyard/registry/.cache \\
    SHIPYARD_API_KEY_FILE=/run/secrets/shipyard-api-key \\
    PORT={PORT}
LABEL org.opencontainers.image.title="{version.name}" \\
      org.opencontainers.image.version="{version.version}" \\
      io.shipyard.manifest-sha256="{version.manifest_sha256}"

USER shipyard
WORKDIR /srv/shipyard
# Every file of the bundle against its hash, now and at every start.
RUN python -m shipyard.deploy.entrypoint --check

EXPOSE {PORT}
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \\
    CMD {healthcheck_command}
CMD ["python", "-m", "shipyard.deploy.entrypoint"]
"""


def _readme(version: ModelVersion, manifests: tuple[Path, ...]) -> str:
    tag = f"{version.name}:{version.version}"
    k8s = (
        f"""
## Kubernetes and KServe

`k8s/` holds a Deployment (readiness and liveness probes, requests and limits), a Service, a
HorizontalPodAutoscaler and a KServe InferenceService (Open Inference Protocol). Both read the
key from the Secret `{version.name}-api-key`:

```bash
kubectl create secret generic {version.name}-api-key --from-literal=api-key="$KEY"
kubectl apply -f k8s/deployment.yaml -f k8s/service.yaml -f k8s/hpa.yaml
# or, on a cluster with KServe:
kubectl apply -f k8s/inferenceservice.yaml
```

Push the image to a registry the cluster pulls from and set its name in the manifests first
(`shipyard package ... --image REGISTRY/{tag}` writes it there).
"""
        if manifests
        else ""
    )
    return f"""\
# {version.reference}: a shipyard serving image

This folder builds an image that serves model version `{version.reference}` (manifest
SHA-256 `{version.manifest_sha256}`). The bundle's files are checked against their hashes
when the image is built and again each time it starts.

## Build

```bash
docker build -t {tag} .          # or: podman build -t {tag} .
```

## Run

The server needs an API key: mount it as a secret file, or pass it in `SHIPYARD_API_KEY`.

```bash
KEY=$(python3 -c "import secrets; print(secrets.token_urlsafe(32))")
printf %s "$KEY" > api-key && chmod 600 api-key
docker run --rm -p {PORT}:{PORT} --cpus 2 \\
    -v "$PWD/api-key:/run/secrets/shipyard-api-key:ro" {tag}
curl -s localhost:{PORT}/ready
curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
    -d '{{"records": [{{...}}]}}' localhost:{PORT}/v1/models/{version.name}/predict
```

One worker process runs per CPU of the container's limit (`--cpus`); set
`SHIPYARD_WORKERS` to choose. The image runs as the user `shipyard`, not root.

| variable | default | meaning |
|---|---|---|
| `SHIPYARD_API_KEY_FILE` | `/run/secrets/shipyard-api-key` | file holding the API key |
| `SHIPYARD_API_KEY` | | the key itself, when no file is mounted |
| `SHIPYARD_WORKERS` | CPUs of the limit | server processes |
| `PORT` | `{PORT}` | port |

## Without a container engine

The entry point runs the same way in any virtual environment on Linux with Python 3.11:

```bash
python3 -m venv venv
venv/bin/pip install --no-deps --only-binary=:all: -r requirements.txt
venv/bin/pip install --no-deps wheels/shipyard-*.whl
SHIPYARD_MODEL={version.reference} SHIPYARD_HOME=registry SHIPYARD_API_KEY="$KEY" \\
    venv/bin/python -m shipyard.deploy.entrypoint
```
{k8s}"""


def write_context(
    registry: Registry,
    reference: str,
    folder: Path,
    *,
    base_image: str = BASE_IMAGE,
    kubernetes: KubernetesSettings | None = None,
    download_wheels: bool = False,
) -> BuildContext:
    """Write the build context for ``reference`` into the new or empty ``folder``.

    With ``download_wheels``, pip fetches every pinned wheel into ``wheels/`` and the image
    installs from there alone (``--no-index``): it builds with no network.

    Raises
    ------
    ConfigError
        When ``folder`` exists and is not empty, or a needed package is not installed.
    ModelNotFoundError
        When the reference matches no version.
    BundleIntegrityError
        When the bundle differs from its recorded hashes (nothing is packaged then).
    """
    folder = Path(folder)
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise ConfigError(
            f"'{folder}' exists and is not an empty folder; choose a new one for the build "
            "context (nothing was written)."
        )
    version = registry.resolve(reference)
    manifest = registry.verify(version.reference)
    requirements = pinned_requirements(serving_extras(_model_formats(manifest)))
    folder.mkdir(parents=True, exist_ok=True)
    copy = Registry(
        f"sqlite:///{folder / 'registry' / 'registry.db'}", folder / "registry" / "artifacts"
    )
    try:
        copy.adopt(version, aliases=(DEFAULT_ALIAS,))
    finally:
        copy.close()
    wheel = write_wheel(folder / "wheels")
    (folder / "requirements.txt").write_text(
        "# Pinned: the packages serving this bundle needs, at the versions that checked it.\n"
        + "".join(f"{name}=={pinned}\n" for name, pinned in requirements.items()),
        encoding="utf-8",
    )
    if download_wheels:
        _download_wheels(folder / "requirements.txt", folder / "wheels")
    manifests: tuple[Path, ...] = ()
    if kubernetes is not None:
        manifests = write_manifests(folder / "k8s", version, kubernetes)
    (folder / "Dockerfile").write_text(
        _dockerfile(version, base_image, download_wheels, requirements), encoding="utf-8"
    )
    (folder / "README.md").write_text(_readme(version, manifests), encoding="utf-8")
    (folder / ".dockerignore").write_text("k8s/\nREADME.md\n", encoding="utf-8")
    (folder / "context.json").write_text(
        json.dumps(
            {
                "reference": version.reference,
                "manifest_sha256": version.manifest_sha256,
                "wheel": wheel.name,
                "requirements": requirements,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    return BuildContext(
        folder, version.reference, version.manifest_sha256, requirements, wheel, manifests
    )
