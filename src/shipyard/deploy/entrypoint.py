"""The container's entry point: the API key from a secret, workers from the CPU limit, serve.

``python -m shipyard.deploy.entrypoint`` is the image's command. It reads, from the
environment:

``SHIPYARD_MODEL``
    The reference to serve (``NAME:VERSION``; the Dockerfile sets it).
``SHIPYARD_HOME``
    The registry folder the image holds (the Dockerfile sets it).
``SHIPYARD_API_KEY_FILE`` / ``SHIPYARD_API_KEY``
    The API key clients send: a file (a mounted Kubernetes or Docker secret; default
    ``/run/secrets/shipyard-api-key``) or the variable. One of them must be set: the server
    never starts without keys. Only the key's SHA-256 is written, to a private keys file.
``SHIPYARD_WORKERS``
    Processes; by default one per CPU of the container's limit (cgroup ``cpu.max`` or
    ``cpu.cfs_quota_us``), else one per visible core, at most 64.
``PORT`` / ``HOST``
    The port (default 8080) and the interface (default ``0.0.0.0``, every interface of the
    container).

Then it becomes ``shipyard serve`` with those settings (``exec``: the server is the
container's main process and receives its signals).
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from shipyard.errors import ConfigError

__all__ = ["DEFAULT_KEY_FILE", "check", "cpu_limit", "main", "serve_arguments", "workers_for"]

DEFAULT_KEY_FILE = "/run/secrets/shipyard-api-key"
_MAX_WORKERS = 64


def cpu_limit(cgroup: Path = Path("/sys/fs/cgroup")) -> float | None:
    """Return the CPUs the container may use (its cgroup quota), or ``None`` when unlimited."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]  # cgroup v2
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:  # cgroup v1
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota_us <= 0 or period_us <= 0 else quota_us / period_us


def workers_for(limit: float | None, cores: int | None) -> int:
    """One worker per whole CPU of the limit (at least one), else per visible core."""
    count = math.floor(limit) if limit is not None else (cores or 1)
    return max(1, min(_MAX_WORKERS, count))


def _api_key(environment: Mapping[str, str]) -> str:
    path = Path(environment.get("SHIPYARD_API_KEY_FILE", DEFAULT_KEY_FILE))
    if path.is_file():
        key = path.read_text(encoding="utf-8").strip()
        if not key:
            raise ConfigError(f"The API key file {path} is empty; put the key in it.")
        return key
    key = environment.get("SHIPYARD_API_KEY", "").strip()
    if key:
        return key
    raise ConfigError(
        f"No API key: mount a secret at {path} (or set SHIPYARD_API_KEY_FILE to its path), "
        "or set SHIPYARD_API_KEY. Clients send it as 'Authorization: Bearer KEY'."
    )


def serve_arguments(environment: Mapping[str, str], keys_file: Path) -> list[str]:
    """Return the ``shipyard serve`` command line the environment asks for.

    Raises
    ------
    ConfigError
        When ``SHIPYARD_MODEL`` or ``SHIPYARD_HOME`` is missing, or a number is not one.
    """
    missing = [name for name in ("SHIPYARD_MODEL", "SHIPYARD_HOME") if not environment.get(name)]
    if missing:
        raise ConfigError(
            f"{' and '.join(missing)} not set: the image's Dockerfile sets them; pass them with "
            "-e when running the entry point outside the image."
        )
    try:
        workers = int(environment.get("SHIPYARD_WORKERS") or 0) or workers_for(
            cpu_limit(), os.cpu_count()
        )
        port = int(environment.get("PORT", "8080"))
    except ValueError as error:
        raise ConfigError(f"SHIPYARD_WORKERS and PORT must be whole numbers ({error}).") from error
    return [
        "serve",
        environment["SHIPYARD_MODEL"],
        "--home",
        environment["SHIPYARD_HOME"],
        "--host",
        environment.get("HOST", "0.0.0.0"),  # a container listens on its own interface
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--keys-file",
        str(keys_file),
        # The image serves one fixed version: no alias to follow.
        "--poll-seconds",
        "0",
    ]


def check(environment: Mapping[str, str]) -> str:
    """Verify the served version's bundle against its hashes; return its reference.

    Raises
    ------
    ConfigError
        When ``SHIPYARD_MODEL`` or ``SHIPYARD_HOME`` is missing.
    BundleIntegrityError
        When a file of the bundle differs from its recorded hash.
    """
    from shipyard.registry.store import Registry

    serve_arguments(environment, Path("unused"))  # the same checks of the environment
    home = Path(environment["SHIPYARD_HOME"])
    registry = Registry(f"sqlite:///{home / 'registry.db'}", home / "artifacts")
    try:
        version = registry.resolve(environment["SHIPYARD_MODEL"])
        registry.verify(version.reference)
    finally:
        registry.close()
    return f"{version.reference} (manifest SHA-256 {version.manifest_sha256})"


def main(environment: Mapping[str, str] | None = None) -> None:
    """Write the keys file from the secret and become ``shipyard serve`` (does not return)."""
    from shipyard.serving.keys import KeyStore

    environment = dict(os.environ if environment is None else environment)
    if sys.argv[1:] == ["--check"]:
        print(f"Verified {check(environment)}")
        return
    try:
        key = _api_key(environment)
        folder = Path(tempfile.mkdtemp(prefix="shipyard-keys-"))
        keys_file = folder / "api-keys.json"
        KeyStore(keys_file).add(key, "container secret")
        arguments = serve_arguments(environment, keys_file)
    except ConfigError as error:
        print(f"Error: {error}", file=sys.stderr)
        raise SystemExit(2) from error
    # exec, not a child: the server is the container's main process and gets its signals.
    script = Path(sys.executable).with_name("shipyard")
    command = str(script) if script.is_file() else "shipyard"
    os.execvp(command, [command, *arguments])


if __name__ == "__main__":
    main()
