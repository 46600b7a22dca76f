"""Registry and plugin discovery: names, duplicates, broken plugins, config-time validation of params.

Fake third-party packages are real distributions: a *.dist-info folder with an entry_points.txt put on
sys.path, read by importlib.metadata exactly as an installed wheel would be.
Run: pytest tests/unit/test_graders_registry.py
"""
import sys

import pytest
from pydantic import ValidationError

from graders import Sample, grader, registry
from graders.rewards import RewardTerm


@pytest.fixture
def installed(tmp_path):
    """Install fake distributions declaring rlvr.graders entry points: installed({"pkg": {name: ref}})."""
    def install(packages: dict[str, dict[str, str]]) -> None:
        for package, graders in packages.items():
            info = tmp_path / f"{package.replace('-', '_')}-1.2.3.dist-info"
            info.mkdir()
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.2.3\n")
            lines = "\n".join(f"{name} = {ref}" for name, ref in graders.items())
            (info / "entry_points.txt").write_text(f"[rlvr.graders]\n{lines}\n")
        sys.path.insert(0, str(tmp_path))
        registry.GRADERS.rescan()

    yield install
    if str(tmp_path) in sys.path:
        sys.path.remove(str(tmp_path))
    registry.GRADERS.rescan()


def test_unknown_name_lists_valid_ones():
    with pytest.raises(registry.GraderNotFound, match=r"unknown grader 'maht'\. Did you mean 'math'\? Valid graders: "
                                                      r".*exact.*math"):
        registry.get("maht")
    with pytest.raises(ValidationError, match=r"unknown grader 'maht'\. Did you mean 'math'\? Valid graders:"):
        RewardTerm(grader="maht")


def test_builtins_are_listed_lazily_with_origin():
    entry = registry.entries()["math"]
    assert (entry.ref, entry.package) == ("graders.math:math_grader", "rlvr")
    assert {"math", "number", "exact", "regex", "format", "length", "code"} <= set(registry.entries())


def test_entry_point_duplicate_names_both_packages(installed):
    installed({"fake-one": {"twin": "json:dumps"}, "fake-two": {"twin": "json:loads"}})
    with pytest.raises(registry.DuplicateGrader, match=r"'twin' is declared twice: by fake-\w+ .* and by fake-"):
        registry.get("twin")
    with pytest.raises(ValidationError, match=r"'twin' is declared twice"):
        RewardTerm(grader="twin")
    assert RewardTerm(grader="math").grader == "math"  # runs not using the name are unaffected


def test_entry_point_clashing_with_a_builtin(installed):
    installed({"fake-math": {"math": "fake_math:grader"}})
    with pytest.raises(registry.DuplicateGrader, match="by rlvr .* and by fake-math"):
        registry.entry("math")


def test_broken_plugin_fails_only_runs_that_use_it(installed):
    installed({"fake-broken": {"broken": "no_such_module_for_rlvr:grader", "not_a_grader": "json:dumps"}})
    assert registry.entries()["broken"].package == "fake-broken"
    with pytest.raises(ValidationError, match=r"grader 'broken' .* failed to load: ModuleNotFoundError"):
        RewardTerm(grader="broken")
    with pytest.raises(registry.GraderLoadError, match="is not a Grader: it lacks name, grade, Params"):
        registry.get("not_a_grader")
    assert RewardTerm(grader="math").grader == "math"  # everything else still works


def test_decorator_refuses_a_taken_name():
    with pytest.raises(registry.DuplicateGrader, match=r"'math' is declared twice: by rlvr .* and by test_graders"):
        grader("math")(shout.fn)


@grader("test_registry_shout", description="1 if the completion shouts")
def shout(sample: Sample, params) -> float:
    return float(sample.completion.isupper())


def test_decorated_function_is_found_by_name():
    assert registry.entries()["test_registry_shout"].package == "test_graders_registry"
    assert shout(Sample("HEY")).score == 1.0 and RewardTerm(grader="test_registry_shout").params == {}


def test_decorator_refuses_a_function_workers_cannot_import():
    with pytest.raises(ValueError, match="must be defined at module level"):
        @grader("test_registry_nested")
        def nested(sample, params):
            return 1.0


def test_params_are_validated_at_load_time_naming_the_field():
    with pytest.raises(ValidationError, match=r"params of grader 'math': bogus: Extra inputs are not permitted"):
        RewardTerm(grader="math", params={"bogus": 1})
    with pytest.raises(ValidationError, match=r"params of grader 'number': abs_tol: Input should be a valid"):
        RewardTerm(grader="number", params={"abs_tol": "tiny"})
    with pytest.raises(ValidationError, match=r"params of grader 'regex': pattern: .*not a valid regular expr"):
        RewardTerm(grader="regex", params={"pattern": "(unclosed"})
    with pytest.raises(ValidationError, match=r"params of grader 'length': target: Field required"):
        RewardTerm(grader="length")
    assert RewardTerm(grader="math", params={"strict": False}).params["strict"] is False


def test_example_plugin_is_discovered_through_its_entry_point():
    entry = registry.entries().get("word_budget")
    assert entry is not None, "examples/plugin is not installed: pip install -e examples/plugin"
    assert (entry.package, entry.version) == ("rlvr-plugin-example", "0.1.0")
    assert registry.get("word_budget").grade([Sample("one two three")], registry.get("word_budget").Params(
        max_words=2))[0].score == 0.0
