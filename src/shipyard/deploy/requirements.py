"""The packages an image needs to serve a bundle, pinned to the versions installed here.

An image runs shipyard's serving path and the library of the bundle's model family, nothing
more: the closure of shipyard's own requirements, the ``serve`` extra and the family's extra
(``xgboost``, ``catboost``), each pinned (``name==version``) to the version that is installed
where the context is made, which is the one the model was checked with. Markers are evaluated
for the image's platform (Linux, this Python), so a Windows-only package never enters it.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterable
from importlib import metadata

from shipyard.errors import ConfigError, require

__all__ = ["FORMAT_EXTRAS", "pinned_requirements", "serving_extras"]

FORMAT_EXTRAS = {"xgboost-json": "xgboost", "catboost-json": "catboost"}
"""Model formats whose library is an extra of shipyard (the others need the core only)."""

_NAME = re.compile(r"[-_.]+")


def _canonical(name: str) -> str:
    return _NAME.sub("-", name).lower()


def serving_extras(formats: Iterable[str]) -> list[str]:
    """Return shipyard's extras that serving models of these formats needs."""
    extras = {"serve"}
    extras.update(FORMAT_EXTRAS[kind] for kind in formats if kind in FORMAT_EXTRAS)
    return sorted(extras)


def _environment(extra: str) -> dict[str, str]:
    # The image is Linux on this Python; the rest of the markers' values are this machine's.
    return {
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "platform_python_implementation": platform.python_implementation(),
        "implementation_name": "cpython",
        "extra": extra,
    }


def pinned_requirements(extras: Iterable[str], root: str = "shipyard") -> dict[str, str]:
    """Return ``{distribution: installed version}`` for everything ``root[extras]`` pulls in.

    ``root`` itself is left out (the image installs it from the context's wheel).

    Raises
    ------
    ConfigError
        When a needed package is not installed here, naming the extra that installs it.
    """
    Requirement = require("packaging.requirements", "deploy").Requirement

    wanted = [(root, tuple(extras))]
    seen: dict[str, str] = {}
    visited: set[tuple[str, tuple[str, ...]]] = set()
    while wanted:
        name, chosen = wanted.pop()
        if (_canonical(name), chosen) in visited:
            continue
        visited.add((_canonical(name), chosen))
        try:
            distribution = metadata.distribution(name)
        except metadata.PackageNotFoundError as error:
            raise ConfigError(
                f"The image needs '{name}', which is not installed here, so its version cannot "
                f"be pinned; install it (pip install 'shipyard[{','.join(chosen) or 'serve'}]') "
                "and package again."
            ) from error
        key = _canonical(distribution.metadata["Name"])
        if key != _canonical(root):
            seen[key] = distribution.version
        for line in distribution.requires or []:
            requirement = Requirement(line)
            marker = requirement.marker
            applies = marker is None or any(
                marker.evaluate(_environment(extra)) for extra in ("", *chosen)
            )
            if not applies:
                continue
            # shipyard[all] names shipyard[serve,...]: the named extras are followed too.
            wanted.append((requirement.name, tuple(sorted(requirement.extras))))
    return dict(sorted(seen.items()))
