"""The shared name registry (graders/plugins.py): suggestions, clashes naming both packages, broken plugins
failing only their own name, a fixed table without entry points.

Fake third-party packages are real distributions: a *.dist-info folder with an entry_points.txt put on sys.path,
read by importlib.metadata exactly as an installed wheel would be. They declare names in a group of their own,
so the real registries never see them.
Run: pytest tests/unit/test_graders_plugins.py
"""
import pytest

from graders.plugins import LoadError, NameClash, Registry, UnknownName

GROUP = "rlvr.test_plugins"


def install(root, packages: dict[str, dict[str, str]]) -> None:
    """Fake distributions declaring GROUP entry points: {"package": {name: "module:attr"}}."""
    for package, names in packages.items():
        info = root / f"{package.replace('-', '_')}-2.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 2.0\n")
        lines = "".join(f"{name} = {ref}\n" for name, ref in names.items())
        (info / "entry_points.txt").write_text(f"[{GROUP}]\n{lines}")


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_fixed_table_loads_lazily_and_suggests_the_closest_name():
    estimators = Registry("advantage estimator", {"grpo": "json:dumps", "rloo": "json:loads"})
    assert estimators.get("grpo")([1]) == "[1]" and estimators.get("grpo") is estimators.get("grpo")
    assert estimators.entries()["rloo"].package == "rlvr" and estimators.clashes() == {}
    with pytest.raises(UnknownName, match=r"^unknown advantage estimator 'gpro'\. Did you mean 'grpo'\? "
                                          r"Valid advantage estimators: grpo, rloo\.$"):
        estimators.get("gpro")
    with pytest.raises(UnknownName, match=r"^unknown advantage estimator 'ppo'\. Valid advantage estimators"):
        estimators.get("ppo")  # nothing close: no suggestion


def test_clash_names_both_packages_and_fails_only_that_name(plugins):
    install(plugins, {"pkg-one": {"twin": "json:dumps", "solo": "json:loads"}, "pkg-two": {"twin": "json:loads"},
                      "pkg-three": {"base": "json:loads"}})
    things = Registry("thing", {"base": "json:dumps"}, group=GROUP)
    with pytest.raises(NameClash, match=r"thing name 'twin' is declared twice: by pkg-(one|two) 2\.0 \(json:\w+\) "
                                        r"and by pkg-(one|two) 2\.0 .*rename one thing"):
        things.get("twin")
    with pytest.raises(NameClash, match=r"by rlvr \S+ \(json:dumps\) and by pkg-three 2\.0 \(json:loads\)"):
        things.entry("base")
    assert set(things.clashes()) == {"twin", "base"} and set(things.entries()) == {"solo"}
    assert things.get("solo") is not None and things.entries()["solo"].package == "pkg-one"
    with pytest.raises(NameClash, match="'solo' is declared twice: by pkg-one 2.0 .* and by json local"):
        things.register("solo", "json:JSONDecoder")


def test_broken_plugin_fails_only_its_own_name(plugins):
    install(plugins, {"pkg-broken": {"broken": "no_such_module_for_rlvr:obj", "wrong": "json:dumps",
                                     "fine": "json:loads"}})
    things = Registry("thing", {}, group=GROUP, check=lambda name, obj: None if name != "wrong" else "is a function")
    assert set(things.entries()) == {"broken", "wrong", "fine"}  # listing imports nothing
    with pytest.raises(LoadError, match=r"^thing 'broken' \(no_such_module_for_rlvr:obj\) failed to load: "
                                        r"ModuleNotFoundError"):
        things.get("broken")
    with pytest.raises(LoadError, match=r"^thing 'wrong' \(json:dumps\) is a function$"):
        things.get("wrong")
    assert things.get("fine")("[2]") == [2]
