"""Write a wheel of the installed shipyard, so that an image runs exactly this code.

The wheel holds the package's files as they are installed (sources, bundled data, the C tree
kernel's source; no caches) and the installed distribution's metadata, with a ``RECORD`` of
SHA-256 hashes as the wheel format asks. Nothing is built and nothing is downloaded: the same
code whether shipyard came from a wheel or an editable checkout.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from importlib import metadata
from pathlib import Path

import shipyard

__all__ = ["write_wheel"]

_SKIPPED_PARTS = frozenset({"__pycache__"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo", ".so")
# A fixed time for every entry: the same code gives the same wheel, byte for byte.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _package_files(root: Path) -> list[Path]:
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and not _SKIPPED_PARTS.intersection(path.relative_to(root).parts)
        and not path.name.endswith(_SKIPPED_SUFFIXES)
    )


def write_wheel(folder: Path) -> Path:
    """Write ``shipyard-VERSION-py3-none-any.whl`` into ``folder``; return its path."""
    distribution = metadata.distribution("shipyard")
    version = distribution.version
    info = f"shipyard-{version}.dist-info"
    root = Path(shipyard.__file__).parent
    entries: list[tuple[str, bytes]] = [
        (f"shipyard/{path.relative_to(root).as_posix()}", path.read_bytes())
        for path in _package_files(root)
    ]
    entry_points = distribution.read_text("entry_points.txt") or ""
    entries += [
        (f"{info}/METADATA", (distribution.read_text("METADATA") or "").encode()),
        (
            f"{info}/WHEEL",
            b"Wheel-Version: 1.0\nGenerator: shipyard\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        ),
        (f"{info}/entry_points.txt", entry_points.encode()),
    ]
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{info}/RECORD,,\n"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"shipyard-{version}-py3-none-any.whl"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in [*entries, (f"{info}/RECORD", record.encode())]:
            entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    return target
