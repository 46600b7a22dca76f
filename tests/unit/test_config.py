"""Config loading: defaults, overrides, and errors that name the key and the fix."""
import pytest

from engine.config import ConfigError, apply_override, config_reference, load_config


def errors_of(*overrides, path=None):
    with pytest.raises(ConfigError) as info:
        load_config(path, list(overrides))
    return str(info.value)


def test_default_config_loads_with_derived_values():
    cfg = load_config(None)
    assert cfg.model.path == "smollm2-135m"
    assert cfg.tasks[0].name == "arithmetic" and cfg.tasks[0].rewards[0].grader == "number"
    assert cfg.rollout_batch == cfg.rollout.prompts_per_step * cfg.rollout.group_size


def test_overrides_parse_yaml_values_and_list_indexes():
    cfg = load_config(None, ["train.steps=7", "grpo.dual_clip=3.0", "tasks.0.params.operators=[+]",
                             "grpo.drop_zero_variance=true", "log.wandb_project=null"])
    assert cfg.train.steps == 7 and cfg.grpo.dual_clip == 3.0 and cfg.grpo.drop_zero_variance is True
    assert cfg.tasks[0].params["operators"] == ["+"] and cfg.log.wandb_project is None


@pytest.mark.parametrize("override, expected", [
    ("grpo.clip_hihg=0.3", "unknown key `grpo.clip_hihg`; did you mean `grpo.clip_high`?"),
    ("rollout.groupsize=4", "did you mean `rollout.group_size`?"),
    ("tasks.0.params.max_digit=3", "unknown param `max_digit` (did you mean `max_digits`?)"),
    ("tasks.0.name=arithmetc", "Did you mean 'arithmetic'?"),
    ("tasks.0.rewards.0.grader=nubmer", "unknown grader 'nubmer'"),
    ("train.zero_stage=5", "`train.zero_stage`"),
    ("rollout.group_size=1", "`rollout.group_size`"),
])
def test_bad_keys_and_values_are_named(override, expected):
    assert expected in errors_of(override)


def test_cross_field_checks_run_before_anything_loads():
    msg = errors_of("rollout.prompts_per_step=3", "rollout.group_size=3", "grpo.minibatches=2")
    assert "rollout.prompts_per_step (3) must be divisible by grpo.minibatches (2)" in msg
    assert "at least one packed group" in errors_of("train.micro_batch_tokens=64")
    assert "overlong_buffer" in errors_of("grpo.overlong_buffer=64", "rollout.max_new_tokens=32")


def test_malformed_overrides_and_files(tmp_path):
    assert "section.key=value" in errors_of("train.steps")
    assert "not an index" in errors_of("tasks.3.weight=2")
    assert "config file not found" in errors_of(path=tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    assert "is not valid YAML" in errors_of(path=bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    assert "must hold a mapping" in errors_of(path=scalar)


def test_a_file_overrides_only_what_it_names(tmp_path):
    f = tmp_path / "small.yaml"
    f.write_text("train:\n  steps: 3\n")
    cfg = load_config(f)
    assert cfg.train.steps == 3 and cfg.tasks[0].name == "arithmetic"  # tasks come from the default


def test_duplicate_task_names_need_labels():
    raw_task = "{name: arithmetic, rewards: [{grader: number}]}"
    assert "give each a `label`" in errors_of(f"tasks=[{raw_task}, {raw_task}]")
    cfg = load_config(None, ["tasks=[{name: arithmetic, label: easy, rewards: [{grader: number}]}, "
                             "{name: arithmetic, label: hard, params: {min_digits: 3, max_digits: 3}, "
                             "rewards: [{grader: number}]}]"])
    assert [t.display_name for t in cfg.tasks] == ["easy", "hard"]


def test_reference_lists_every_field_with_a_description():
    text = config_reference()
    for key in ("grpo.clip_high", "train.zero_stage", "rollout.group_size", "eval.k", "tasks.rewards"):
        assert key in text
    assert not [line for line in text.splitlines() if line.endswith(": None")]  # every field is described


def test_apply_override_creates_missing_sections():
    raw = {}
    apply_override(raw, "grpo.beta=0.04")
    assert raw == {"grpo": {"beta": 0.04}}


@pytest.mark.parametrize("override, expected", [
    ("vllm.kv_cache=2", "unknown key `vllm.kv_cache`; did you mean `vllm.kv_cache_gib`?"),
    ("vllm.kv_cache_gib=0", "`vllm.kv_cache_gib`: Input should be greater than 0"),
    ("vllm.execution=fast", "`vllm.execution`"),
    ("vllm.gpu_memory_utilization=1.5", "`vllm.gpu_memory_utilization`"),
    ("vllm.dtype=float16", "`vllm.dtype`"),
    ("grpo.is_correction=tis", "`grpo.is_correction`"),
    ("grpo.is_ratio_max=0.5", "`grpo.is_ratio_max`"),
    ("grpo.is_ratio_min=1", "`grpo.is_ratio_min`"),
    ("rollout.max_weight_lag=-1", "`rollout.max_weight_lag`"),
])
def test_bad_vllm_and_correction_options_name_the_key(override, expected):
    assert expected in errors_of(override)


def test_vllm_cross_checks():
    import importlib.util
    if importlib.util.find_spec("vllm") is None:
        assert "rollout.backend=vllm needs vLLM: pip install -e '.[vllm]'" in errors_of("rollout.backend=vllm")
    else:
        assert "vllm.max_model_len (100) must hold the longest sequence" in \
            errors_of("rollout.backend=vllm", "vllm.max_model_len=100")
        cfg = load_config(None, ["rollout.backend=vllm", "eval.max_new_tokens=100"])
        assert cfg.sequence_len == cfg.rollout.max_prompt_tokens + 100


def prompt_only_config(tmp_path, rewards: str) -> str:
    """A config whose second task reads rows with just a prompt (answer_field: null, no reference_fields)."""
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "Write one sentence about rain."}\n')
    (tmp_path / "rm").mkdir(exist_ok=True)
    (tmp_path / "rm" / "reward_model.json").write_text("{}")  # enough for config validation: no model loads
    path = tmp_path / "mixed.yaml"
    path.write_text(f"""
tasks:
  - name: arithmetic
    rewards: [{{grader: number}}]
  - name: jsonl
    params: {{path: {tmp_path / "prompts.jsonl"}, answer_field: null}}
    rewards: {rewards}
""")
    return str(path)


def test_prompt_only_task_is_fine_when_no_term_needs_a_reference(tmp_path):
    rm = f"{{grader: reward_model, params: {{path: {tmp_path / 'rm'}}}}}"
    length = "{grader: length, weight: 0.1, params: {target: 40}}"
    cfg = load_config(prompt_only_config(tmp_path, f"[{rm}, {length}]"))
    assert cfg.tasks[1].params["answer_field"] is None and cfg.tasks[1].params["reference_fields"] == []
    cfg = load_config(prompt_only_config(tmp_path, "[{grader: number}]"), ["tasks.1.params.reference_fields=[id]"])
    assert cfg.tasks[1].params["reference_fields"] == ["id"]  # a reference from another column: any grader


def test_prompt_only_task_with_a_grader_that_needs_a_reference_names_the_key_and_fix(tmp_path):
    rm = f"{{grader: reward_model, params: {{path: {tmp_path / 'rm'}}}}}"
    msg = errors_of(path=prompt_only_config(tmp_path, f"[{rm}, {{grader: math}}, {{grader: format}}]"))
    assert "`tasks.1.params.answer_field`: null with no reference_fields" in msg
    assert "grader 'math' needs one; set answer_field to the column with the answer" in msg
    msg = errors_of(path=prompt_only_config(tmp_path, "[{grader: number}, {grader: exact}]"))
    assert "graders 'number', 'exact' need one" in msg
