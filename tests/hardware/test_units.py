import math

import pytest

from pipesim.hardware.units import (
    BANDWIDTH,
    BYTES,
    FLOPS,
    TIME,
    UnitError,
    format_quantity,
    parse,
)


@pytest.mark.parametrize(
    "text, kind, value",
    [
        ("80GB", BYTES, 80e9),
        ("32 GiB", BYTES, 32 * 2**30),
        ("900GB/s", BANDWIDTH, 900e9),
        ("3.35TB/s", BANDWIDTH, 3.35e12),
        ("100Gbit/s", BANDWIDTH, 12.5e9),
        ("312TFLOPS", FLOPS, 312e12),
        ("147.2 GFLOPS", FLOPS, 147.2e9),
        ("624TOPS", FLOPS, 624e12),
        ("2ms", TIME, 2e-3),
        ("5us", TIME, 5e-6),
        ("1e3 B", BYTES, 1e3),
        (12.5, TIME, 12.5),
        (0, BYTES, 0.0),
    ],
)
def test_parse(text, kind, value):
    assert math.isclose(parse(text, kind), value, rel_tol=1e-12)


@pytest.mark.parametrize(
    "text, kind, message",
    [
        ("80GB", BANDWIDTH, "is a bytes quantity, expected bandwidth"),
        ("80 parsecs", BYTES, "unknown unit 'parsecs'"),
        ("fast", FLOPS, "cannot read 'fast'"),
        (-1, TIME, "non-negative"),
        (True, TIME, "must be a time quantity"),
        (None, BYTES, "must be a bytes quantity"),
    ],
)
def test_parse_errors_name_the_field(text, kind, message):
    with pytest.raises(UnitError, match=message) as info:
        parse(text, kind, "devices.x.memory")
    assert str(info.value).startswith("devices.x.memory: ")
    assert info.value.field == "devices.x.memory"


def test_format_quantity():
    assert format_quantity(80e9, BYTES) == "80 GB"
    assert format_quantity(2e-3, TIME) == "2 ms"
    assert format_quantity(math.inf, BYTES) == "unlimited"
    assert format_quantity(312e12, FLOPS) == "312 TFLOPS"
