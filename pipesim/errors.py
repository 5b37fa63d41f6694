"""pipesim's exception tree: one root, one class per kind of failure.

Every error pipesim raises on purpose is a :class:`PipesimError`; the command
line catches that root once and prints one line with exit code 2.  Errors
about the user's input keep :class:`ValueError` as a second base (and
runtime failures :class:`RuntimeError`), so ``except ValueError`` in
callers written before the tree existed still works.

::

    PipesimError
    ├── InputError          a file or argument is wrong (names the file and the field)
    │   └── ScenarioError   every problem of a scenario file at once
    ├── GraphError          an operator graph violates the model
    ├── SplitError          a split cannot be evaluated at all
    ├── HardwareError       a hardware description or edit is wrong
    │   └── UnitError       a quantity that cannot be read
    ├── ModelSpecError      a model generator's parameters describe no model
    ├── InfeasibleError     no answer satisfies the constraints
    ├── ResourceLimitError  the answer would need more memory or ideals than allowed
    │   └── IdealLimitError more ideals than the limit
    ├── SimulationError     a schedule cannot execute a placement
    ├── MissingExtraError   an optional part's package is not installed (names the extra)
    └── InternalError       an invariant failed: a bug in pipesim, never the input

This module imports nothing from pipesim, so every layer (hardware,
placement, the simulator and the command line) can raise these.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

__all__ = [
    "GraphError",
    "HardwareError",
    "IdealLimitError",
    "InfeasibleError",
    "InputError",
    "InternalError",
    "MissingExtraError",
    "ModelSpecError",
    "PipesimError",
    "ResourceLimitError",
    "SimulationError",
    "SplitError",
    "UnitError",
    "require_extra",
]


class PipesimError(Exception):
    """The root: every error pipesim raises on purpose.

    Examples
    --------
    >>> issubclass(InputError, PipesimError), issubclass(InputError, ValueError)
    (True, True)
    """


class InputError(PipesimError, ValueError):
    """A bad input file or argument: the message names the file and the field.

    Examples
    --------
    >>> str(InputError("w.json", "nodes[3].id", "must be a whole number"))
    'w.json: nodes[3].id: must be a whole number'
    """

    def __init__(self, source: str | Path | None, field: str | None, problem: str):
        self.source, self.field, self.problem = source, field, problem
        where = ": ".join(str(part) for part in (source, field) if part)
        super().__init__(f"{where}: {problem}" if where else problem)


class GraphError(PipesimError, ValueError):
    """An operator graph violates the model; the message names the culprit."""


class SplitError(PipesimError, ValueError):
    """A split that cannot be evaluated at all (unknown, repeated or unplaced nodes)."""


class HardwareError(PipesimError, ValueError):
    """A bad hardware description or edit; the message names the field.

    Examples
    --------
    >>> str(HardwareError("devices.a100.memory", "must be positive, got -1"))
    'devices.a100.memory: must be positive, got -1'
    """

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field}: {problem}" if field else problem)


class UnitError(HardwareError):
    """A quantity that cannot be read."""


class ModelSpecError(PipesimError, ValueError):
    """A model generator was given parameters that describe no valid model."""


class InfeasibleError(PipesimError, ValueError):
    """No answer satisfies the constraints (memory, device counts, unsupported nodes)."""


class ResourceLimitError(PipesimError, RuntimeError):
    """Solving would need more memory (or more ideals) than the budget allows."""


class IdealLimitError(ResourceLimitError):
    """More ideals than the configured limit."""


class SimulationError(PipesimError, RuntimeError):
    """The schedule cannot execute this placement (its lanes deadlock)."""


class InternalError(PipesimError, RuntimeError):
    """An invariant failed: a bug in pipesim (please report it), never a problem of the input."""


class MissingExtraError(PipesimError, ImportError):
    """An optional part needs a package that is not installed; the message names the extra to install."""


def require_extra(module: str, extra: str) -> ModuleType:
    """Import ``module`` of the optional part ``extra``, or raise :class:`MissingExtraError` saying how to get it.

    Examples
    --------
    >>> require_extra("json", "core").__name__
    'json'
    >>> require_extra("no_such_module_here", "onnx")
    Traceback (most recent call last):
    ...
    pipesim.errors.MissingExtraError: no_such_module_here is not installed: pip install 'pipesim[onnx]'
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(f"{module} is not installed: pip install 'pipesim[{extra}]'") from None
