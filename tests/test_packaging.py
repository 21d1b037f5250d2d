"""Packaging: the runtime pins are exactly what the dependencies need, every import in src/ is
declared, the gateway serves with the runtime dependencies alone, and the wheel carries every
file of the package (a data file left out of `package-data` fails here, not in production)."""

from __future__ import annotations

import ast
import configparser
import importlib.metadata as md
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Iterator
from email.parser import HeaderParser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "crossroads"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEPENDENCIES = [Requirement(spec) for spec in PROJECT["dependencies"]]
EXTRAS = {
    extra: [Requirement(spec) for spec in specs] for extra, specs in PROJECT["optional-dependencies"].items()
}


def pins(name: str) -> dict[NormalizedName, Version]:
    """The `name==version` lines of requirements/<name> (not the files it includes)."""
    found = {}
    for text in (ROOT / "requirements" / name).read_text().splitlines():
        line = text.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            package, _, version = line.partition("==")
            assert version, f"requirements/{name}: {line!r} is not an exact pin"
            found[canonicalize_name(package)] = Version(version)
    return found


def closure(requirements: list[Requirement]) -> set[NormalizedName]:
    """Every distribution these requirements bring on this platform, from the installed metadata."""
    extras_of: dict[NormalizedName, set[str]] = {}
    todo = [req for req in requirements if req.marker is None or req.marker.evaluate({"extra": ""})]
    while todo:
        req = todo.pop()
        name = canonicalize_name(req.name)
        known = extras_of.get(name)
        if known is not None and set(req.extras) <= known:
            continue
        extras = extras_of.setdefault(name, set())
        extras |= set(req.extras)
        for spec in md.distribution(name).requires or []:
            sub = Requirement(spec)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in extras | {""}):
                todo.append(sub)
    return set(extras_of)


RUNTIME = pins("runtime.txt")


def test_runtime_pins_are_in_the_declared_ranges() -> None:
    for req in DEPENDENCIES:
        name = canonicalize_name(req.name)
        assert name in RUNTIME, f"{req.name} is a dependency in pyproject.toml but not pinned in runtime.txt"
        assert req.specifier.contains(RUNTIME[name], prereleases=True), (
            f"runtime.txt pins {req.name}=={RUNTIME[name]}, outside pyproject.toml's {req.specifier}"
        )


def test_runtime_pins_are_exactly_what_the_dependencies_bring() -> None:
    needed = closure(DEPENDENCIES)
    assert not needed - set(RUNTIME), "brought by pyproject.toml's dependencies but not pinned in runtime.txt"
    assert not set(RUNTIME) - needed, "pinned in runtime.txt but no dependency in pyproject.toml needs it"
    installed = {name: Version(md.version(name)) for name in RUNTIME}
    assert installed == RUNTIME, "the environment differs from runtime.txt (does dev.txt move a pin?)"


def test_extras_are_pinned_for_the_tests() -> None:
    dev = pins("dev.txt")
    for extra, requirements in EXTRAS.items():
        for req in requirements:
            name = canonicalize_name(req.name)
            assert name not in RUNTIME, f"the {extra} extra's {req.name} is pinned as a runtime dependency"
            assert name in dev and req.specifier.contains(dev[name], prereleases=True), (
                f"the {extra} extra's {req}: dev.txt should pin a version in that range"
            )


def _optional(node: ast.Try) -> bool:
    """A `try:` whose handler catches ImportError: what it imports may be missing."""
    for handler in node.handlers:
        caught = handler.type
        names = caught.elts if isinstance(caught, ast.Tuple) else [caught]
        if any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names):
            return True
    return False


def _required_imports(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, top-level module) of each import that must succeed: not under TYPE_CHECKING, not
    in a try that handles ImportError; at module level or in a function (a lazy import)."""
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and ast.unparse(node.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Try) and _optional(node):
            todo.extend([*node.handlers, *node.orelse, *node.finalbody])
            continue
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name.partition(".")[0]) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module.partition(".")[0]
        todo.extend(ast.iter_child_nodes(node))


def test_every_required_import_is_a_declared_dependency() -> None:
    declared = {canonicalize_name(req.name) for req in DEPENDENCIES}
    providers = md.packages_distributions()
    undeclared = []
    for path in sorted(SRC.rglob("*.py")):
        for line, module in _required_imports(ast.parse(path.read_text(), str(path))):
            if module in sys.stdlib_module_names or module == "crossroads":
                continue
            dists = {canonicalize_name(d) for d in providers.get(module, [])}
            if not dists & declared:
                undeclared.append(f"{path.relative_to(ROOT)}:{line}: {module} ({', '.join(dists) or '?'})")
    assert not undeclared, "imported without an ImportError fallback, not in pyproject.toml's dependencies"


# Run in a child: imports resolve only to the standard library, crossroads and the
# distributions of runtime.txt, as in a venv holding nothing else; then every crossroads
# module is imported and `crossroads serve` runs.
RUNTIME_ONLY = """
import importlib, importlib.machinery, json, os, pkgutil, sys

allowed = set(json.loads(os.environ["ALLOWED_MODULES"])) | set(sys.stdlib_module_names)

class RuntimeOnly(importlib.machinery.PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] not in allowed:
            return None
        return super().find_spec(name, path, target)

sys.meta_path[:] = [RuntimeOnly if f is importlib.machinery.PathFinder else f for f in sys.meta_path]
import crossroads
for module in pkgutil.walk_packages(crossroads.__path__, "crossroads."):
    importlib.import_module(module.name)
from crossroads.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_serves_with_the_runtime_dependencies_only(tmp_path: Path) -> None:
    providers = md.packages_distributions()
    runtime = set(RUNTIME)
    allowed = sorted(m for m, dists in providers.items() if {canonicalize_name(d) for d in dists} & runtime)
    port = _free_port()
    env = {
        **os.environ,
        "ALLOWED_MODULES": json.dumps([*allowed, "crossroads"]),
        "CROSSROADS_DATABASE_URL": "sqlite:///:memory:",
    }
    child = subprocess.Popen(
        [sys.executable, "-c", RUNTIME_ONLY, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert child.poll() is None, f"crossroads exited:\n{child.communicate()[0]}"
            assert time.monotonic() < deadline, "no answer on /health within 30 s"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                time.sleep(0.1)
        body = {"model": "mock-1", "messages": [{"role": "user", "content": "Hi"}]}
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            data=json.dumps(body).encode(),
            headers={"content-type": "application/json", "x-portkey-provider": "mock"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = json.loads(response.read())
        assert answer["choices"][0]["message"]["content"] == "Hi"
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel, built offline from a copy of what the Dockerfile copies (no build/ in the tree)."""
    work = tmp_path_factory.mktemp("wheel")
    project = work / "project"
    (project / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(SRC, project / "src" / "crossroads", ignore=skip)
    offline = ["--quiet", "--no-deps", "--no-build-isolation", "--no-index"]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", *offline, "--wheel-dir", str(work / "dist"), str(project)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = (work / "dist").glob("crossroads-*.whl")
    return zipfile.ZipFile(built)


def test_the_wheel_carries_every_file_of_the_package(wheel: zipfile.ZipFile) -> None:
    package = {
        f"crossroads/{p.relative_to(SRC).as_posix()}"
        for p in SRC.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    names = set(wheel.namelist())
    assert not package - names, "in src/crossroads but not in the wheel: add it to package-data"
    assert {n.split("/")[0] for n in names} == {"crossroads", f"crossroads-{PROJECT['version']}.dist-info"}
    assert {n for n in names if n.startswith("crossroads/")} == package


def test_the_wheel_declares_the_dependencies_and_the_command(wheel: zipfile.ZipFile) -> None:
    info = f"crossroads-{PROJECT['version']}.dist-info"
    headers = HeaderParser().parsestr(wheel.read(f"{info}/METADATA").decode())
    expected = {str(req) for req in DEPENDENCIES} | {
        str(Requirement(f'{req}; extra == "{extra}"')) for extra, reqs in EXTRAS.items() for req in reqs
    }
    assert {str(Requirement(r)) for r in headers.get_all("Requires-Dist", [])} == expected
    assert set(headers.get_all("Provides-Extra", [])) == set(EXTRAS)
    assert f"{info}/licenses/LICENSE" in wheel.namelist()
    entry_points = configparser.ConfigParser()
    entry_points.read_string(wheel.read(f"{info}/entry_points.txt").decode())
    assert dict(entry_points["console_scripts"]) == {"crossroads": "crossroads.cli:main"}
