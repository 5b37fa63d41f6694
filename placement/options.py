"""Typed options: what a solver (or a scenario field) accepts, checked once.

Problem: the same option reaches a solver from Python (``solve(w, "dp",
ideal_limit=10**6)``), from the command line (``--ideal-limit 1000000``, a
string) and from a scenario file (``solve.options.ideal_limit: 1000000``, a
YAML value).  Each :class:`Field` says what the option is — a whole number
with a minimum, a choice, a size, a duration, a file — and converts a value
from any of the three, or raises an :class:`~pipesim.errors.InputError`
whose ``field`` names the option and whose ``problem`` says what is wrong.
The command line derives its flags from the fields and a scenario validates
its ``solve.options`` with them, so a flag's name and checks cannot drift
from the scenario's.

Examples
--------
>>> Int(minimum=1).convert("12", "restarts")
12
>>> Duration().convert("2m", "time_limit")
120.0
>>> Choice(("exact", "paper", "none")).convert("fast", "merge")
Traceback (most recent call last):
...
pipesim.errors.InputError: merge: must be one of exact, paper, none, got "fast"
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipesim.errors import HardwareError, InputError
from pipesim.hardware.units import BYTES, TIME, is_number, parse

__all__ = ["Bool", "Choice", "Duration", "Field", "File", "Float", "Int", "IntList", "Size", "Text",
           "require_positive_ints"]


def require_positive_ints(config: object, names: Sequence[str]) -> None:
    """Raise :class:`~pipesim.errors.InputError` naming the first of ``names`` (attributes of ``config``) that is
    not a positive integer: the one check of a configuration's whole-number fields (a model's shape,
    :class:`pipesim.workloads.transformer.TransformerConfig`; a parallel layout,
    :class:`pipesim.placement.plan.megatron.ParallelConfig`).

    >>> from types import SimpleNamespace
    >>> require_positive_ints(SimpleNamespace(tp=2, pp=0), ("tp", "pp"))
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: pp: must be a positive integer, got 0
    """
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(None, name, f"must be a positive integer, got {value!r}")


def _shown(value: Any) -> str:
    return f'"{value}"' if isinstance(value, str) else repr(value)


@dataclass(frozen=True)
class Field:
    """One option: its help text and how a value is checked (subclasses say which values)."""

    help: str = field(default="", kw_only=True)

    #: the command line's metavar
    metavar = "VALUE"

    def convert(self, value: Any, where: str, base: Path | None = None) -> Any:
        """``value`` (Python, YAML or command-line text) checked and converted.

        Parameters
        ----------
        value
            From Python, a YAML file or the command line (text).
        where : str
            The option's field path, named in the error.
        base : Path, optional
            The folder relative file paths are resolved against.

        Returns
        -------
        The converted value.

        Raises
        ------
        InputError
            The value is not acceptable; ``field`` is ``where``.
        """
        raise NotImplementedError

    def fail(self, where: str, problem: str) -> InputError:
        """The :class:`InputError` to raise for ``where`` (no file: options have none)."""
        return InputError(None, where, problem)


@dataclass(frozen=True)
class Int(Field):
    """A whole number at least ``minimum``.

    Examples
    --------
    >>> Int(minimum=0).convert("0", "seed")
    0
    """

    minimum: int = 1
    metavar = "N"

    def convert(self, value, where, base=None):
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            kind = "a positive" if self.minimum == 1 else ("a non-negative" if self.minimum == 0 else f"a ≥ {self.minimum}")
            raise self.fail(where, f"must be {kind} whole number, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Float(Field):
    """A finite number at least ``minimum`` (above it when ``strict``).

    Examples
    --------
    >>> Float(minimum=0.0).convert("1e-4", "gap")
    0.0001
    >>> Float(minimum=0.0, strict=True).convert(0, "speed")
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: speed: must be a number > 0, got 0
    """

    minimum: float = 0.0
    strict: bool = False

    def convert(self, value, where, base=None):
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                pass
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or value < self.minimum or (self.strict and value == self.minimum):
            relation = ">" if self.strict else "≥"
            raise self.fail(where, f"must be a number {relation} {self.minimum:g}, got {_shown(value)}")
        return float(value)


@dataclass(frozen=True)
class Duration(Field):
    """A positive time in seconds: a number, or a quantity such as ``"90s"``, ``"2m"``, ``"500ms"``.

    Examples
    --------
    >>> Duration().convert("500ms", "time_limit"), Duration().convert(30, "time_limit")
    (0.5, 30.0)
    """

    metavar = "SECONDS"

    def convert(self, value, where, base=None):
        text = value.strip() if isinstance(value, str) else value
        if isinstance(text, str) and text.endswith(("m", "min", "h")) and not text.endswith("ms"):
            number, unit = text.rstrip("minh"), text[len(text.rstrip("minh")):]
            factor = {"m": 60.0, "min": 60.0, "h": 3600.0}.get(unit)
            try:
                seconds = float(number) * factor if factor else None
            except ValueError:
                seconds = None
        else:
            try:
                seconds = parse(float(text) if isinstance(text, str) and is_number(text) else text, TIME, where)
            except HardwareError:
                seconds = None
        if seconds is None or not seconds > 0 or not math.isfinite(seconds):
            raise self.fail(where, f'must be a positive time (seconds, or e.g. "90s", "2m"), got {_shown(value)}')
        return seconds


@dataclass(frozen=True)
class Size(Field):
    """A positive number of bytes: a number, or a quantity such as ``"16GiB"``.

    Examples
    --------
    >>> Size().convert("16GiB", "memory")
    17179869184.0
    """

    metavar = "BYTES"

    def convert(self, value, where, base=None):
        try:
            size = parse(float(value) if isinstance(value, str) and is_number(value) else value, BYTES, where)
        except HardwareError:
            size = None
        if size is None or not size > 0:
            raise self.fail(where, f'must be a positive size, got {_shown(value)} (e.g. "80GB")')
        return size


@dataclass(frozen=True)
class Bool(Field):
    """``true`` or ``false`` (a bool, or that text).

    Examples
    --------
    >>> Bool().convert("true", "fuse_layers")
    True
    """

    def convert(self, value, where, base=None):
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise self.fail(where, f"must be true or false, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Choice(Field):
    """One of ``values`` (dashes and underscores are the same).

    Examples
    --------
    >>> Choice(("1f1b-flush", "gpipe")).convert("1f1b_flush", "schedule")
    '1f1b-flush'
    """

    values: Sequence[str] = ()

    @property
    def metavar(self) -> str:  # type: ignore[override]
        """``{a,b,c}`` for the command line's help."""
        return "{" + ",".join(self.values) + "}"

    def convert(self, value, where, base=None):
        if isinstance(value, str):
            for choice in self.values:
                if value.replace("-", "_") == choice.replace("-", "_"):
                    return choice
        raise self.fail(where, f"must be one of {', '.join(self.values)}, got {_shown(value)}")


@dataclass(frozen=True)
class Text(Field):
    """A non-empty string.

    Examples
    --------
    >>> Text().convert("", "name")
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: name: must be a non-empty text, got ""
    """

    def convert(self, value, where, base=None):
        if not isinstance(value, str) or not value:
            raise self.fail(where, f"must be a non-empty text, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class IntList(Field):
    """A list of whole numbers (``[1, 2]``, or ``"1,2"`` on the command line), as a tuple.

    Examples
    --------
    >>> IntList().convert("2,40,46", "ignore_sources")
    (2, 40, 46)
    """

    metavar = "N1,N2"

    def convert(self, value, where, base=None):
        if isinstance(value, str):
            try:
                value = [int(x) for x in value.split(",") if x.strip()]
            except ValueError:
                pass
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list) or not all(isinstance(x, int) and not isinstance(x, bool) for x in value):
            raise self.fail(where, f"must be a list of whole numbers, got {_shown(value)}")
        return tuple(value)


@dataclass(frozen=True)
class File(Field):
    """An existing file, resolved against ``base`` (a scenario's folder); other accepted values pass as they are.

    ``keywords`` are words accepted instead of a file (``warm_start: dp``);
    ``objects`` are types accepted as they are (a :class:`~pipesim.placement.split.Split`).

    Examples
    --------
    >>> File(keywords=("dp",)).convert("dp", "warm_start")
    'dp'
    >>> File().convert("missing.json", "split", base=Path("/nowhere"))
    Traceback (most recent call last):
    ...
    pipesim.errors.InputError: split: no such file: /nowhere/missing.json
    """

    keywords: Sequence[str] = ()
    objects: tuple[type, ...] = ()
    metavar = "FILE"

    def convert(self, value, where, base=None):
        if self.objects and isinstance(value, self.objects):
            return value
        if isinstance(value, str) and value in self.keywords:
            return value
        if not isinstance(value, (str, Path)) or not str(value):
            raise self.fail(where, f"must be a file path, got {_shown(value)}")
        path = Path(value).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        if not path.is_file():
            raise self.fail(where, f"no such file: {path}")
        return path
