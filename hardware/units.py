"""Physical quantities written the way datasheets write them.

Presets and what-if edits say ``"80GB"``, ``"900GB/s"``, ``"312TFLOPS"``,
``"2ms"``.  :func:`parse` turns such a text (or a plain number, taken as SI
base units) into a float in base units: bytes, bytes per second, FLOP per
second, seconds.

Prefixes are decimal (k, M, G, T, P = 10^3 … 10^15) as in datasheets; the
binary ones (KiB, MiB, GiB, TiB) are powers of 1024.  Bits are accepted for
bandwidths (``"100Gbit/s"`` = 12.5 GB/s).  A text that does not parse, a unit
of the wrong kind or a negative value raises :class:`UnitError` naming the
field.
"""

from __future__ import annotations

import math
import re

from pipesim.errors import HardwareError, InternalError, UnitError

__all__ = ["BANDWIDTH", "BYTES", "FLOPS", "KINDS", "TIME", "HardwareError", "UnitError", "format_bytes", "format_quantity", "is_number",
           "parse"]

BYTES, BANDWIDTH, FLOPS, TIME = "bytes", "bandwidth", "flops", "time"
KINDS = (BYTES, BANDWIDTH, FLOPS, TIME)




_PREFIX = {"": 1.0, "k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BINARY = {"Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40}
_TIME = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}

# Unit (after the prefix) -> (kind, factor to base units).
_UNITS = {
    "B": (BYTES, 1.0),
    "B/s": (BANDWIDTH, 1.0),
    "Bps": (BANDWIDTH, 1.0),
    "bit/s": (BANDWIDTH, 1 / 8),
    "bps": (BANDWIDTH, 1 / 8),
    "FLOPS": (FLOPS, 1.0),
    "FLOP/s": (FLOPS, 1.0),
    "flops": (FLOPS, 1.0),
    "OPS": (FLOPS, 1.0),  # integer datasheets say TOPS
}

_QUANTITY = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([^\s0-9].*?)?\s*$")


def _unit(unit: str) -> tuple[str, float]:
    if unit in _TIME:
        return TIME, _TIME[unit]
    for prefixes in (_BINARY, _PREFIX):
        for prefix, scale in prefixes.items():
            rest = unit[len(prefix) :]
            if unit.startswith(prefix) and rest in _UNITS:
                kind, factor = _UNITS[rest]
                return kind, scale * factor
    raise KeyError(unit)


def parse(value: object, kind: str, field: str = "") -> float:
    """``value`` (``"80GB"``, ``"2ms"``, ``12.5`` …) in base units of ``kind``.

    Parameters
    ----------
    value : str or float
        A quantity with a unit (``"900GB/s"``, ``"100Gbit/s"``, ``"16GiB"``)
        or a plain number, taken as base units (bytes, bytes/s, FLOP/s, s).
    kind : {"bytes", "bandwidth", "flops", "time"}
        What the quantity must be (:data:`BYTES`, :data:`BANDWIDTH`,
        :data:`FLOPS`, :data:`TIME`).
    field : str, optional
        The field the value came from, named in the error message.

    Returns
    -------
    float
        The value in base units, finite and non-negative.

    Raises
    ------
    UnitError
        The text does not parse, its unit is of another kind, or the value is
        negative or not finite.
    ValueError
        ``kind`` is not one of :data:`KINDS` (a programming error).

    Examples
    --------
    >>> parse("80GB", BYTES)
    80000000000.0
    >>> parse("16GiB", BYTES) == 16 * 2**30
    True
    >>> parse("100Gbit/s", BANDWIDTH)
    12500000000.0
    >>> parse("2ms", TIME)
    0.002
    >>> parse("2ms", BYTES, "devices.a100.memory")
    Traceback (most recent call last):
    ...
    pipesim.errors.UnitError: devices.a100.memory: '2ms' is a time quantity, expected bytes (e.g. "80GB")
    """
    if kind not in KINDS:
        raise InternalError(f"unknown quantity kind {kind!r}")
    if isinstance(value, bool):
        raise UnitError(field, f"must be a {kind} quantity, got {value!r}")
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        match = _QUANTITY.match(value)
        if not match:
            raise UnitError(field, f"cannot read {value!r} as a {kind} quantity (e.g. {_EXAMPLE[kind]})")
        number = float(match.group(1))
        if match.group(2):
            try:
                unit_kind, factor = _unit(match.group(2))
            except KeyError:
                raise UnitError(field, f"unknown unit {match.group(2)!r} in {value!r} (e.g. {_EXAMPLE[kind]})") from None
            if unit_kind != kind:
                raise UnitError(field, f"{value!r} is a {unit_kind} quantity, expected {kind} (e.g. {_EXAMPLE[kind]})")
            number *= factor
    else:
        raise UnitError(field, f"must be a {kind} quantity, got {value!r}")
    if math.isnan(number) or math.isinf(number) or number < 0:
        raise UnitError(field, f"must be a finite non-negative {kind} quantity, got {value!r}")
    return number


_EXAMPLE = {BYTES: '"80GB"', BANDWIDTH: '"900GB/s"', FLOPS: '"312TFLOPS"', TIME: '"2ms"'}
_SUFFIX = {BYTES: "B", BANDWIDTH: "B/s", FLOPS: "FLOPS", TIME: "s"}


def is_number(text: str) -> bool:
    """Whether ``text`` reads as a plain number (no unit): ``is_number("2.5")``, not ``is_number("2GB")``."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def format_bytes(value: float) -> str:
    """Bytes in binary units, as the tables and messages show memory.

    >>> format_bytes(3 * 2**30), format_bytes(1536), format_bytes(float("inf"))
    ('3 GiB', '1.5 KiB', 'unlimited')
    """
    if math.isinf(value):
        return "unlimited"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.4g} {unit}"
        value /= 1024
    return str(value)


def format_quantity(value: float, kind: str) -> str:
    """A short human form of a base-unit value (decimal prefixes, four significant digits).

    Parameters
    ----------
    value : float
        In base units; ``inf`` reads ``"unlimited"``.
    kind : {"bytes", "bandwidth", "flops", "time"}

    Returns
    -------
    str

    Examples
    --------
    >>> format_quantity(8e10, BYTES)
    '80 GB'
    >>> format_quantity(3.12e14, FLOPS)
    '312 TFLOPS'
    >>> format_quantity(0.002, TIME)
    '2 ms'
    >>> format_quantity(float("inf"), BYTES)
    'unlimited'
    """
    if math.isinf(value):
        return "unlimited"
    if kind == TIME:
        for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9)):
            if value >= scale or unit == "ns":
                return f"{value / scale:.4g} {unit}"
    for prefix in ("P", "T", "G", "M", "k", ""):
        if value >= _PREFIX[prefix] or prefix == "":
            return f"{value / _PREFIX[prefix]:.4g} {prefix}{_SUFFIX[kind]}"
    return str(value)
