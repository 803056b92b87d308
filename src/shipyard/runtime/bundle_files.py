"""The one way into a bundle: resolve a manifest's file name to a regular file inside it.

Every name a manifest holds (the listed files, the model, the contract, the preprocessing,
cleaning and references) is resolved by :func:`bundle_file`: relative POSIX paths only, no
``..``, no symbolic link anywhere on the path, no special files, and the resolved path inside
the bundle. It lives with the runtime because the runtime's scorers read bundle files too.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from shipyard.errors import BundleIntegrityError

__all__ = ["ALTERED", "bundle_file", "entry_problem"]

ALTERED = (
    "The bundle was altered after it was registered; do not serve it. Re-train, or "
    "restore the folder from a backup."
)


def entry_problem(relative: Any) -> str | None:
    """Say why a manifest entry is not a plain relative POSIX path, or return ``None``."""
    if not isinstance(relative, str) or not relative:
        return f"is {type(relative).__name__} {relative!r}, not a file name"
    if "\\" in relative or "\x00" in relative:
        return "holds a backslash or a NUL character; bundle paths are POSIX paths"
    pure = PurePosixPath(relative)
    if pure.is_absolute():
        return "is an absolute path; bundle paths are relative to the bundle folder"
    if ".." in pure.parts:
        return "has a '..' part, which leads out of the bundle folder"
    if str(pure) != relative or "." in relative.split("/"):
        return f"is not in plain form (expected {str(pure)!r})"
    return None


def _link_or_special(path: Path) -> str | None:
    """Say why ``path`` may not be read as a bundle file (``lstat``: links are not followed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "is missing"
    if stat.S_ISLNK(mode):
        return f"is a symbolic link (to '{os.readlink(path)}'); bundles hold regular files only"
    return None


def bundle_file(directory: Path, relative: Any) -> Path:
    """Return the path of the regular file ``relative`` names inside the bundle ``directory``.

    This is the one way into a bundle: every name a manifest holds (the listed files, the model,
    the contract, the preprocessing, cleaning and references) is resolved here.

    Parameters
    ----------
    directory
        The bundle folder.
    relative
        The file's name in the manifest: a relative POSIX path such as ``model.lgb.txt``.

    Raises
    ------
    BundleIntegrityError
        Naming the entry and why it is refused: not a relative POSIX path, a ``..`` part, a
        symbolic link anywhere on the path, missing, not a regular file (a folder, a device, a
        pipe), or resolving outside the bundle.
    """
    directory = Path(directory)
    problem = entry_problem(relative)
    path = directory
    if problem is None:
        for part in PurePosixPath(relative).parts:
            path = path / part
            problem = _link_or_special(path)
            if problem is not None:
                if path.relative_to(directory).as_posix() != relative:
                    problem = f"(at '{path.relative_to(directory).as_posix()}') {problem}"
                break
    if problem is None and not stat.S_ISREG(os.lstat(path).st_mode):
        problem = "is not a regular file"
    if problem is None and not path.resolve().is_relative_to(directory.resolve()):
        problem = "resolves outside the bundle folder"
    if problem is not None:
        raise BundleIntegrityError(
            f"Bundle entry {relative!r} {problem} (bundle {directory}). {ALTERED}"
        )
    return path
