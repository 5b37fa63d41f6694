"""Writing output files: all or nothing, and one line when the path is wrong.

Problem: an output path can be unwritable (a read-only folder or file system,
a path through a regular file, a full disk) and a write can fail half way
(a plot that raises, Ctrl-C).  A command must then say so in one line naming
the path (and the option that gave it), and must never leave a half-written
file where a good one was.

Guarantee: every file pipesim writes goes through :func:`atomic_path` (or its
shorthands :func:`write_text`, :func:`save_figure`):

* the content is written to a temporary name in the target's folder, then
  renamed over the target with :func:`os.replace` (atomic on POSIX, same file
  system), so readers see the old file or the complete new one, never a part;
* any :class:`OSError` — while creating the folder, writing or renaming —
  becomes one :class:`~pipesim.errors.InputError` naming the path and the
  option; the temporary file is removed on every failure;
* :func:`check_writable` answers the same question before any work is done,
  so a bad path fails in milliseconds, not after an hour of solving.

Like :mod:`pipesim.errors`, this module imports nothing else from pipesim, so
every layer (placement's file formats, the simulator's traces, the reports and
the command line) writes through it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pipesim.errors import InputError

__all__ = ["atomic_path", "check_writable", "output_folder", "save_figure", "write_text"]


def _problem(exc: OSError) -> str:
    return f"cannot be written ({exc.strerror or exc})"


def output_folder(path: str | Path, option: str | None = None) -> Path:
    """``path`` as an output folder: created with its parents; a file or an unwritable place is one line.

    Raises
    ------
    InputError
        ``path`` is a file, or it (or a parent) cannot be created.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> output_folder(root / "a" / "b").is_dir()
    True
    >>> _ = (root / "f").write_text("x")
    >>> output_folder(root / "f" / "sub", "-o")
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: .../f/sub: -o: cannot create the folder (.../f is a file, not a folder)
    """
    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, option, "is a file: the output must be a folder")
    blocker = next((p for p in folder.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(folder, option, f"cannot create the folder ({blocker} is a file, not a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(folder, option, f"cannot create the folder ({exc.strerror or exc})") from None
    _probe(folder, folder, option, ".pipesim")  # an existing read-only folder fails now, not after the work
    return folder


def _probe(folder: Path, named: Path, option: str | None, prefix: str) -> None:
    """Create and remove a temporary file in ``folder``; an error names ``named``."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise InputError(named, option, _problem(exc)) from None


def _parent(target: Path, option: str | None) -> Path:
    """``target``'s folder, created if missing; a failure names ``target`` (the path the user gave)."""
    folder = target.parent
    if str(folder) in ("", "."):
        return Path(".")
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise InputError(target, option, f"cannot be written ({blocker} is a file, not a folder)")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(target, option, f"cannot create its folder ({exc.strerror or exc})") from None
    return folder


def check_writable(path: str | Path, option: str | None = None, what: str = "output") -> Path:
    """``path`` as a file that can be written now: its folder is created and probed; nothing else is touched.

    Parameters
    ----------
    path : str or Path
    option : str, optional
        The command-line option that named the file (``--trace``), for the message.
    what : str
        What the file is, for the message about a directory.

    Raises
    ------
    InputError
        ``path`` is a directory, or its folder cannot be created or written.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> root = Path(tempfile.mkdtemp())
    >>> check_writable(root / "new" / "out.json").parent.is_dir()
    True
    >>> check_writable(root, "--trace", "trace")
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: ...: --trace: is a directory: give a file name for the trace
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(target, option, f"is a directory: give a file name for the {what}")
    if _special(target):  # /dev/stdout, a named pipe: written in place, nothing is created beside it
        if not os.access(target, os.W_OK):
            raise InputError(target, option, "cannot be written (Permission denied)")
        return target
    folder = _parent(target, option)
    # probe: create and remove a temporary file beside the target (permissions, read-only file systems)
    _probe(folder, target, option, f".{target.name}.")
    return target


def _special(target: Path) -> bool:
    """A device, pipe or socket, or a name under /dev or /proc (``/dev/stdout`` may point at a regular file,
    which a rename would replace instead of writing to it)."""
    if str(target.absolute()).startswith(("/dev/", "/proc/")):
        return True
    return target.exists() and not target.is_file() and not target.is_dir()


def _new_file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(path: str | Path, option: str | None = None) -> Iterator[Path]:
    """A temporary path beside ``path``; when the block ends without error it replaces ``path``.

    The temporary name keeps ``path``'s suffix (matplotlib picks the format
    from it).  On any error the temporary file is removed and ``path`` is
    left as it was; an :class:`OSError` is re-raised as one
    :class:`~pipesim.errors.InputError` naming ``path`` and ``option``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "out.txt"
    >>> _ = target.write_text("good")
    >>> try:
    ...     with atomic_path(target) as tmp:
    ...         _ = tmp.write_text("half")
    ...         raise RuntimeError("the plot failed")
    ... except RuntimeError:
    ...     pass
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('good', ['out.txt'])
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(target, option, "is a directory: give a file name")
    if _special(target):  # /dev/stdout, a named pipe: no rename over it (that would replace the device node)
        try:
            yield target
        except OSError as exc:
            raise InputError(target, option, _problem(exc)) from None
        return
    if target.is_symlink():  # replace the file the link points to, not the link
        target = target.resolve()
    folder = _parent(target, option)
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.",
                                    suffix=".part" + target.suffix)
        os.close(fd)
    except FileExistsError:
        raise InputError(target, option, "cannot be written (Not a directory)") from None
    except OSError as exc:
        raise InputError(target, option, _problem(exc)) from None
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp makes 0600 files; the result gets what a plain open() would have given it
        os.chmod(tmp, (target.stat().st_mode & 0o7777) if target.exists() else _new_file_mode())
        os.replace(tmp, target)
    except OSError as exc:
        raise InputError(target, option, _problem(exc)) from None
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        except OSError:  # the folder became unwritable: nothing more can be done
            pass


def write_text(path: str | Path, text: str, option: str | None = None, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` all or nothing (:func:`atomic_path`).

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "sub" / "a.txt"
    >>> write_text(target, "hello")
    >>> target.read_text()
    'hello'
    """
    with atomic_path(path, option) as tmp:
        with open(tmp, "w", encoding=encoding, newline="") as f:
            f.write(text)


def save_figure(fig: Any, path: str | Path, option: str | None = None, **savefig: Any) -> None:
    """``fig.savefig`` to ``path`` all or nothing; the format comes from ``path``'s suffix.

    A file object (``io.BytesIO``: a picture inlined in a notebook) is written as it is, in PNG.
    """
    if not isinstance(path, (str, Path)):
        fig.savefig(path, format="png", **savefig)
        return
    fmt = Path(path).suffix.lstrip(".").lower() or None
    with atomic_path(path, option) as tmp:
        fig.savefig(tmp, format=fmt, **savefig)
