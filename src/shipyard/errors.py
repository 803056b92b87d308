"""The exceptions shipyard raises.

Every error a user can cause derives from :class:`ShipyardError` and carries a message that says
what was wrong and how to fix it. Where an error specialises a builtin, it inherits that builtin
too, so existing ``except ValueError`` blocks keep working::

    ShipyardError
    ├── ConfigError (ValueError)            bad or unknown keys in shipyard.yaml or on the CLI
    ├── DataError (ValueError)              a data source cannot be read or is unusable
    │   └── DataValidationError             data breaks its contract (carries the violations)
    ├── TrainingError (RuntimeError)        no candidate could be trained
    ├── ExportError (RuntimeError)          a model cannot be exported to the serving format,
    │                                       or the exported model disagrees with the trained one
    ├── EngineError (RuntimeError)          the cluster engine cannot be reached or lost the work
    │   └── PartitionError                  one partition (file) failed: names it and the reason
    ├── PredictionLogError (RuntimeError)   the prediction log did not commit a served
    │                                       prediction (failed, full or too slow)
    ├── BrokerError (ConnectionError)       a message broker cannot be reached or refused
    │                                       a publish (shipyard stream)
    ├── RegistryError                       registry problems
    │   ├── ModelNotFoundError (LookupError) no such model, version or alias
    │   └── BundleIntegrityError            a bundle file is missing, extra or altered
    ├── DatabaseSchemaError (RuntimeError)  a store's database needs 'shipyard db upgrade',
    │                                       or was upgraded by a newer release
    └── MissingDependencyError (ImportError) an optional extra is not installed

Warnings (not errors: the work goes on)::

    PackageVersionWarning (UserWarning)     a bundle was trained with another major version
                                            of a package its model depends on
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "BrokerError",
    "BundleIntegrityError",
    "ConfigError",
    "DataError",
    "DataValidationError",
    "DatabaseSchemaError",
    "EngineError",
    "ExportError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "PackageVersionWarning",
    "PartitionError",
    "PredictionLogError",
    "RegistryError",
    "ShipyardError",
    "TrainingError",
]


class ShipyardError(Exception):
    """Root of every error shipyard raises on purpose."""


class ConfigError(ShipyardError, ValueError):
    """The configuration (file, flags or overrides) is invalid."""


class DataError(ShipyardError, ValueError):
    """A data source cannot be read, or its content cannot be used as asked."""


class DataValidationError(DataError):
    """Data breaks its contract.

    Parameters
    ----------
    message
        The summary shown to the user.
    violations
        Every violation found, as mappings with ``column``, ``row``, ``value`` and ``rule``.
    """

    def __init__(self, message: str, violations: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.violations = list(violations)


class TrainingError(ShipyardError, RuntimeError):
    """Training failed for every candidate, or cannot start."""


class ExportError(ShipyardError, RuntimeError):
    """A model cannot be exported to the serving format, or fails the parity check."""


class EngineError(ShipyardError, RuntimeError):
    """The cluster engine cannot be reached, or it lost work (for example a worker kept dying)."""


class PartitionError(EngineError):
    """One partition (one input file) failed; the message names the file and the reason.

    Parameters
    ----------
    message
        The whole message.
    source
        The file the partition was read from.
    reason
        Why it failed (the original error, as text).
    """

    def __init__(self, message: str, source: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.source = source
        self.reason = reason

    def __reduce__(self) -> tuple[Any, ...]:
        # Raised on a worker and re-raised in the client: keep the fields through pickling.
        return (type(self), (str(self), self.source, self.reason))


class PredictionLogError(ShipyardError, RuntimeError):
    """The prediction log did not commit a served prediction (failed, queue full, too slow).

    The server answers 503 then: a prediction is acknowledged only once it is logged.
    """


class BrokerError(ShipyardError, ConnectionError):
    """A message broker cannot be reached, or it refused a publish (``shipyard stream``)."""


class RegistryError(ShipyardError):
    """The registry cannot do what was asked."""


class ModelNotFoundError(RegistryError, LookupError):
    """No model, version or alias matches the reference."""


class BundleIntegrityError(RegistryError):
    """A model bundle's files do not match the hashes in its manifest."""


class DatabaseSchemaError(ShipyardError, RuntimeError):
    """A store's tables are at another schema revision than this code needs.

    Either behind it (``shipyard db upgrade`` brings them to it) or ahead of it (a newer
    release upgraded the database); the message says which, and what to do.
    """


class MissingDependencyError(ShipyardError, ImportError):
    """An optional dependency (a shipyard extra) is not installed."""


class PackageVersionWarning(UserWarning):
    """A bundle was trained with another major version of a package its model depends on.

    The model still loads; its answers may differ from the ones measured at training. The
    message names each package, the version that trained and the version installed now.
    """


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or explain which extra installs it.

    Parameters
    ----------
    module
        The module to import, for example ``"uvicorn"``.
    extra
        The shipyard extra that provides it, for example ``"serve"``.

    Returns
    -------
    module
        The imported module.

    Raises
    ------
    MissingDependencyError
        When the module is not installed.
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"This feature needs the '{module}' package, which is not installed. "
            f"Install it with: pip install 'shipyard[{extra}]'"
        ) from error
