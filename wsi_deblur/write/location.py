"""Where outputs go: a local folder, or any fsspec URL (``s3://bucket/out``, ``gs://...``, ``memory://...``).

Local paths stay :class:`pathlib.Path` and keep their atomic renames. A URL
becomes a :class:`upath.UPath` on its fsspec filesystem (the filesystem's
package, such as ``s3fs`` or ``gcsfs``, must be installed, with credentials
in its usual environment variables or config). Every writer of the project
goes through the few functions here, so both kinds behave the same:

- an object store has no rename, so a "move" is a server-side copy and a
  delete; a single object written whole is already atomic there;
- Zarr stores on a URL use ``zarr.storage.FsspecStore``;
- files that must be seekable while written (TIFF) are written locally by
  the process that makes them and uploaded when complete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union

from upath import UPath

#: A local path or a path on an fsspec filesystem.
OutputPath = Union[Path, UPath]  # noqa: UP007 (a runtime alias: Python 3.10 has no `|` of these classes)

LOCAL_PROTOCOLS = ("", "file", "local")


def output_path(location: str | os.PathLike) -> OutputPath:
    """``location`` as a path object: :class:`~pathlib.Path` when local, else :class:`~upath.UPath`."""
    if isinstance(location, UPath) and location.protocol not in LOCAL_PROTOCOLS:
        return location
    if isinstance(location, Path):
        return Path(location)
    path = UPath(str(location))
    return Path(path.path) if path.protocol in LOCAL_PROTOCOLS else path


def is_local(path: OutputPath) -> bool:
    return not isinstance(path, UPath) or path.protocol in LOCAL_PROTOCOLS


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` so that readers see the old file or the new one, never half of one."""
    path = output_path(path)
    if is_local(path):
        tmp = path.with_name(f".{path.name}.partial-{uuid.uuid4().hex[:8]}")
        try:
            tmp.write_text(text)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half-written temporary behind
            raise
    else:
        path.write_text(text)  # one object, put whole


def move(source: OutputPath, target: OutputPath) -> None:
    """Move a file or folder to ``target`` (which must not exist)."""
    if is_local(source):
        os.replace(source, target)
    else:
        source.fs.mv(source.path, target.path, recursive=True)


def remove(path: OutputPath) -> None:
    """Remove a file or a folder tree, if it is there."""
    if is_local(path):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
    elif path.exists():
        path.fs.rm(path.path, recursive=True)


def zarr_store(path: OutputPath) -> Any:
    """What :func:`zarr.open_group` takes for the store at ``path``."""
    if is_local(path):
        return str(path)
    from zarr.storage import FsspecStore

    # from_url makes the async instance Zarr needs (wrapping a sync filesystem).
    return FsspecStore.from_url(str(path), storage_options=dict(path.storage_options) or None, read_only=False)


@contextmanager
def local_file(path: OutputPath, suffix: str = "") -> Iterator[Path]:
    """A local file to write ``path`` through: ``path`` itself, or a temporary file uploaded on success."""
    if is_local(path):
        yield Path(path)
        return
    with tempfile.TemporaryDirectory(prefix="wsi-deblur-") as tmp:
        local = Path(tmp) / f"upload{suffix}"
        yield local
        path.fs.put_file(str(local), path.path)
