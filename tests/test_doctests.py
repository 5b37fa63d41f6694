"""Every docstring example of the installed ``pipesim`` package runs and prints what it shows.

One test per module.  The modules are found by walking the *installed*
package (``pipesim``, ``pipesim.hardware`` and ``pipesim.placement``: in an
editable install the last two live in the repository's ``hardware/`` and
``placement/`` folders, outside ``pipesim.__path__``, so each is walked from its
own ``__path__``).  pytest's ``--doctest-modules`` is not used: it would import
``hardware/*.py`` from the checkout as a second, top-level ``hardware`` package.

The examples of the guides in ``docs/`` (``>>>`` lines in the Markdown) run
the same way, one test per page.

A module that needs an optional dependency which is not installed is skipped
with its name; CI installs ``.[test]``, which has every extra, so there
nothing is skipped.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

#: the packages walked; later ones may repeat modules of earlier ones (wheel installs)
ROOTS = ("pipesim", "pipesim.hardware", "pipesim.placement")
#: modules never imported here: running them has effects (the command line's entry point)
EXCLUDED = {"pipesim.__main__"}
#: top-level import names of optional dependencies (each installed by one of pipesim's extras)
OPTIONAL = {"onnx", "onnxruntime", "dask", "distributed", "pymetis"}
#: modules whose examples are wrong and owned by someone else right now: module -> why (strict: a fix must remove it)
KNOWN_FAILING: dict[str, str] = {}
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_names() -> list[str]:
    names: set[str] = set()
    for root in ROOTS:
        package = importlib.import_module(root)
        names.add(root)
        # walk_packages imports subpackages to recurse; an import error there surfaces in the test
        for info in pkgutil.walk_packages(package.__path__, f"{root}.", onerror=lambda name: None):
            names.add(info.name)
    return sorted(names - EXCLUDED)


MODULES = _module_names()


def test_the_walk_finds_every_layer():
    """The walk reaches all three folders; a silent miss would make every doctest test vacuous."""
    for expected in ("pipesim.api", "pipesim.hardware.units", "pipesim.placement.evaluate",
                     "pipesim.placement.latency.model", "pipesim.simulation.simulator"):
        assert expected in MODULES


#: Modules whose examples run a whole solve or scenario (seconds): run by CI, not by default.
SLOW_MODULES = {"pipesim.api"}


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_FAILING[name], strict=True)) if name in KNOWN_FAILING
    else pytest.param(name, marks=pytest.mark.slow) if name in SLOW_MODULES
    else name for name in MODULES])
def test_doctests(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        top = (exc.name or "").split(".")[0]
        if top in OPTIONAL:
            pytest.skip(f"{name} needs the optional dependency {top!r}, which is not installed (an extra of pipesim)")
        raise
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in finder.find(module, name):
        runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, f"{results.failed} of {results.attempted} doctest examples failed in {name} (output above)"


#: the repository's guides (not installed: read from the checkout)
DOCS = Path(__file__).resolve().parents[1] / "docs"
PAGES = sorted(DOCS.rglob("*.md"))


#: pages whose examples take seconds (an LLM plan search, a real ONNX pipeline): run by CI, not by default
SLOW_PAGES = {"tutorials/llm-parallelism.md", "tutorials/onnx-on-cpu-cores.md"}


@pytest.mark.parametrize("page", [pytest.param(p, marks=pytest.mark.slow) if p.relative_to(DOCS).as_posix() in SLOW_PAGES
                                  else p for p in PAGES], ids=[p.relative_to(DOCS).as_posix() for p in PAGES])
def test_docs_examples(page: Path) -> None:
    results = doctest.testfile(str(page), module_relative=False, optionflags=FLAGS, encoding="utf-8")
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples failed in docs/{page.relative_to(DOCS)} (output above)"
