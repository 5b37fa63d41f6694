"""One import name: the checkout's hardware/ and placement/ install as pipesim.hardware and pipesim.placement.

Checked for the editable install the tests run against and for a wheel built
from the checkout, each from a folder outside the checkout (where the
checkout's folders are not on ``sys.path``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"pipesim": "pipesim", "pipesim.hardware": "hardware", "pipesim.placement": "placement"}

PROBE = """
import importlib, sys
import pipesim.placement.dp.solve, pipesim.hardware.catalog as catalog
assert catalog.builtin_catalog().system("a100x8")       # package data (presets/*.yaml) installed
for name in ("placement", "hardware"):
    try:
        importlib.import_module(name)
    except ImportError:
        continue
    sys.exit(f"import {name} should fail outside the checkout")
print(pipesim.__file__)
"""


def _packages() -> list[str]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]


def test_every_package_folder_is_installed():
    found = set()
    for name, folder in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *parts)))
    assert found == set(_packages())


def _run(code: str, cwd: Path, **env) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": "", **env})


@pytest.mark.slow
def test_editable_install_outside_the_checkout(tmp_path):
    out = _run(PROBE, tmp_path)
    assert out.returncode == 0, out.stderr


@pytest.mark.slow
def test_wheel_installs_one_import_name(tmp_path):
    wheels = tmp_path / "wheels"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(ROOT)],
                           capture_output=True, text=True, timeout=600)
    if built.returncode != 0 and "Could not find a version that satisfies the requirement setuptools" in built.stderr:
        pytest.skip("no package index to fetch setuptools for the build")
    assert built.returncode == 0, built.stderr
    wheel = next(wheels.glob("pipesim-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"pipesim"}
    assert "pipesim/hardware/presets/devices.yaml" in names and "pipesim/placement/dp/solve.py" in names
    target = tmp_path / "site"
    installed = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                                str(wheel)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    out = _run(PROBE, tmp_path, PYTHONPATH=str(target))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(target))


def test_the_library_never_imports_the_command_line():
    offenders = []
    for folder in ("pipesim", "hardware", "placement"):
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("pipesim/cli.py", "pipesim/__main__.py") or rel.startswith("pipesim/commands/"):
                continue
            text = path.read_text()
            if "pipesim.commands" in text or "pipesim.cli" in text:
                offenders.append(rel)
    assert offenders == []


def test_imports_flow_hardware_placement_pipesim():
    """hardware imports nothing above it; placement nothing but hardware (and the leaves pipesim.errors, pipesim.output)."""
    allowed = {"hardware": ("pipesim.hardware", "pipesim.errors"),
               "placement": ("pipesim.hardware", "pipesim.placement", "pipesim.errors", "pipesim.output")}
    offenders = []
    for folder, prefixes in allowed.items():
        for path in (ROOT / folder).rglob("*.py"):
            for line in path.read_text().splitlines():
                words = line.split()
                if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith("pipesim"):
                    if not words[1].startswith(prefixes):
                        offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert offenders == []


def test_the_leaves_import_nothing_else_from_pipesim():
    """pipesim.errors and pipesim.output are imported by every layer, so they import no other pipesim module."""
    allowed = {"pipesim/errors.py": (), "pipesim/output.py": ("pipesim.errors",)}
    offenders = []
    for rel, ok in allowed.items():
        for line in (ROOT / rel).read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("from", "import") and words[1].startswith("pipesim") and words[1] not in ok:
                offenders.append(f"{rel}: {line.strip()}")
    assert offenders == []
