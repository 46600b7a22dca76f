"""`code_synth`: procedurally generated small Python functions, seeded, graded by hidden unit tests in the sandbox.

Each example asks for one tiny function from a family ("return x times 3 plus 4", "count the times 'ab'
appears in s", "the numbers in nums greater than 12", ...) whose constants are drawn at random:

    Write a Python function `scale_and_shift(x)` that returns 3 times x plus 4.

    Examples:
    scale_and_shift(2) == 10
    scale_and_shift(-5) == -11

    Reply with only the function in a ```python code block.

reference = {"tests": {"kind": "call", "fn_name": ..., "cases": [...]}}: the shown examples plus `hidden_tests`
more cases the prompt does not show (edge cases such as an empty list among them), for the `code` grader. The
expected values come from running the family's reference solution here; meta holds the family, the key and
that solution (`meta["solution"]`), so tests can check that it passes in the real sandbox.

How the splits stay disjoint: a problem's *function* is its family plus its constants (the key, e.g.
`scale_and_shift:3:4`). Every key is routed to train or held-out by a hash, independent of any seed, so
eval asks for functions training never asks for (other constants of the same families). Draws are O(1) and
stateless as in tasks/arithmetic.py: train example i takes attempt 0, 1, ... of the stream keyed by (run seed,
i) and keeps the first draw whose key routes to train; eval takes draws 0, 1, ... of the stream keyed by
`eval_seed`, keeping the first `eval_size` distinct held-out keys. Families are picked uniformly among
`families`; each family's key space is listed in FAMILIES (21 to ~950,000 keys): a small family has few
held-out functions, so it is under-represented in a large eval split. Function names do not give the answer
away (`keep_some`, `count_text`, `shift`): the spec and the examples have to be read.

What is covered: one-argument functions over ints, strings and lists of ints, with plain-type results.
What is not covered: multi-function programs, classes, I/O, anything needing imports; held-out families
(eval holds out constants, not whole families: a model that learns "filter greater than t" for t=12 is scored
on t=31).
"""
from __future__ import annotations

import hashlib
import random
import string
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.base import Example, TaskSpec, build_prompt, check_template

MAX_ATTEMPTS = 1000
LETTERS = string.ascii_lowercase
WORDS = ("a", "ox", "we", "sky", "sun", "cat", "tree", "moon", "rain", "apple", "river", "cloud", "garden",
         "candle", "pencil", "window", "balloon", "picture", "elephant", "mountain", "umbrella", "butterfly",
         "chocolate", "strawberry")  # 1 to 10 letters


@dataclass(frozen=True)
class Draft:
    """One drawn function: key (family and constants), signature, spec text, reference body, input sampler."""

    key: tuple
    fn_name: str
    arg: str
    spec: str                                   # "returns ..." (completes "a function `f(x)` that ...")
    body: str                                   # the reference solution's body, one or more lines
    draw_input: Callable[[random.Random], Any]  # one argument value
    edge_inputs: tuple = ()                     # always among the hidden tests


def small_int(rng: random.Random) -> int:
    return rng.randint(-20, 40)


def int_list(rng: random.Random) -> list[int]:
    return [rng.randint(0, 60) for _ in range(rng.randint(1, 5))]


def around(t: int) -> Callable[[random.Random], list[int]]:
    """Lists of 1-5 numbers near t (t itself among them now and then), so that comparisons with t matter."""
    return lambda rng: [t if rng.random() < 0.15 else rng.randint(max(0, t - 20), t + 20)
                        for _ in range(rng.randint(1, 5))]


def word(rng: random.Random, must: str = "") -> str:
    """A lowercase string of 3-7 letters; when `must` is given, it is spliced in with probability 2/3."""
    s = "".join(rng.choice(LETTERS) for _ in range(rng.randint(3, 7)))
    if must and rng.random() < 2 / 3:
        for _ in range(rng.randint(1, 2)):
            i = rng.randint(0, len(s))
            s = s[:i] + must + s[i:]
    return s


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))


# --- families: each draws its constants and returns the Draft ----------------------------------------------


def add_or_subtract(rng: random.Random) -> Draft:
    op, k = rng.choice(["plus", "minus"]), rng.randint(1, 99)
    sign = "+" if op == "plus" else "-"
    return Draft(("add_or_subtract", op, k), "shift", "x", f"returns x {op} {k}", f"return x {sign} {k}",
                 small_int)


def scale_and_shift(rng: random.Random) -> Draft:
    a, b = rng.randint(2, 9), rng.randint(1, 20)
    return Draft(("scale_and_shift", a, b), "scale_and_shift", "x", f"returns {a} times x plus {b}",
                 f"return {a} * x + {b}", small_int)


def is_multiple(rng: random.Random) -> Draft:
    k = rng.randint(2, 50)
    return Draft(("is_multiple", k), "is_multiple", "n", f"returns True if n is divisible by {k}, else False",
                 f"return n % {k} == 0", lambda r: r.choice([k * r.randint(-3, 5), r.randint(-50, 200)]), (0,))


def clamp(rng: random.Random) -> Draft:
    lo = rng.randint(-10, 20)
    hi = lo + rng.randint(5, 30)
    return Draft(("clamp", lo, hi), "clamp", "x",
                 f"returns {lo} if x is less than {lo}, {hi} if x is greater than {hi}, and x otherwise",
                 f"return min(max(x, {lo}), {hi})", lambda r: r.randint(lo - 15, hi + 15), (lo, hi))


def count_text(rng: random.Random) -> Draft:
    """Two-letter targets have two different letters, so occurrences never overlap (no "aa" in "aaa")."""
    target = "".join(rng.sample(LETTERS, 2)) if rng.random() < 0.5 else rng.choice(LETTERS)
    what = f"the letter '{target}'" if len(target) == 1 else f"the substring '{target}'"
    return Draft(("count_text", target), "count_text", "s", f"returns how many times {what} appears in s",
                 f"return s.count({target!r})", lambda r: word(r, target), ("",))


def replace_letter(rng: random.Random) -> Draft:
    a, b = rng.sample(LETTERS, 2)
    return Draft(("replace_letter", a, b), "replace_letter", "s", f"returns s with every '{a}' replaced by '{b}'",
                 f"return s.replace({a!r}, {b!r})", lambda r: word(r, a), ("",))


def remove_letter(rng: random.Random) -> Draft:
    a = rng.choice(LETTERS) + (rng.choice(LETTERS) if rng.random() < 0.5 else "")
    return Draft(("remove_letter", a), "remove_text", "s", f"returns s with every '{a}' removed",
                 f"return s.replace({a!r}, '')", lambda r: word(r, a), ("",))


def add_affix(rng: random.Random) -> Draft:
    where = rng.choice(["start", "end"])
    affix = "".join(rng.choice(LETTERS) for _ in range(rng.randint(2, 4)))
    body = f"return {affix!r} + s" if where == "start" else f"return s + {affix!r}"
    return Draft(("add_affix", where, affix), "add_text", "s", f"returns s with '{affix}' added at the {where}",
                 body, word, ("",))


def repeat_text(rng: random.Random) -> Draft:
    n, sep = rng.randint(2, 6), rng.choice(["", "-", " ", ",", "+", "/", "."])
    if sep:
        spec, body = f"returns {n} copies of s joined by '{sep}'", f"return {sep!r}.join([s] * {n})"
    else:
        spec, body = f"returns s repeated {n} times", f"return s * {n}"
    return Draft(("repeat_text", n, sep), "repeat_text", "s", spec, body, word)


def filter_compare(rng: random.Random) -> Draft:
    op, t = rng.choice(["greater", "less"]), rng.randint(5, 55)
    sign = ">" if op == "greater" else "<"
    return Draft(("filter_compare", op, t), "keep_some", "nums",
                 f"returns a list of the numbers in nums that are {op} than {t}, in their original order",
                 f"return [n for n in nums if n {sign} {t}]", around(t), ([],))


def sum_compare(rng: random.Random) -> Draft:
    op, t = rng.choice(["greater", "less"]), rng.randint(5, 55)
    sign = ">" if op == "greater" else "<"
    return Draft(("sum_compare", op, t), "sum_some", "nums",
                 f"returns the sum of the numbers in nums that are {op} than {t}",
                 f"return sum(n for n in nums if n {sign} {t})", around(t), ([],))


def count_compare(rng: random.Random) -> Draft:
    op, t = rng.choice(["greater", "less"]), rng.randint(5, 55)
    sign = ">" if op == "greater" else "<"
    return Draft(("count_compare", op, t), "count_some", "nums",
                 f"returns how many numbers in nums are {op} than {t}",
                 f"return len([n for n in nums if n {sign} {t}])", around(t), ([],))


def map_list(rng: random.Random) -> Draft:
    op, k = rng.choice(["plus", "times"]), rng.randint(2, 30)
    sign = "+" if op == "plus" else "*"
    spec = f"returns a new list with {k} added to every number in nums" if op == "plus" else \
        f"returns a new list with every number in nums multiplied by {k}"
    return Draft(("map_list", op, k), "change_all", "nums", spec, f"return [n {sign} {k} for n in nums]",
                 int_list, ([],))


def slice_list(rng: random.Random) -> Draft:
    where, n = rng.choice(["the first", "the last", "all but the first", "all but the last"]), rng.randint(1, 6)
    body = {"the first": f"return nums[:{n}]", "the last": f"return nums[-{n}:]",
            "all but the first": f"return nums[{n}:]", "all but the last": f"return nums[:-{n}]"}[where]
    spec = f"returns {where} {n} numbers of nums" + (
        " (all of them if nums is shorter)" if where.startswith("the") else " (an empty list if nums is shorter)")
    return Draft(("slice_list", where, n), "take_some", "nums", spec, body,
                 lambda r: [r.randint(0, 60) for _ in range(r.randint(0, n + 3))], ([],))


def extreme_plus(rng: random.Random) -> Draft:
    which, k = rng.choice(["largest", "smallest"]), rng.randint(1, 50)
    fn = "max" if which == "largest" else "min"
    return Draft(("extreme_plus", which, k), "extreme_plus", "nums",
                 f"returns the {which} number in nums plus {k} (nums is never empty)", f"return {fn}(nums) + {k}",
                 int_list)


def count_long_words(rng: random.Random) -> Draft:
    op, n = rng.choice(["more than", "fewer than", "exactly"]), rng.randint(2, 8)
    sign = {"more than": ">", "fewer than": "<", "exactly": "=="}[op]
    return Draft(("count_long_words", op, n), "count_words", "text",
                 f"returns how many words in text (separated by spaces) have {op} {n} letters",
                 f"return len([w for w in text.split() if len(w) {sign} {n}])", sentence, ("",))


Family = Callable[[random.Random], Draft]
FAMILIES: dict[str, tuple[Family, int]] = {  # name -> (draw, number of distinct keys)
    "add_or_subtract": (add_or_subtract, 2 * 99),
    "scale_and_shift": (scale_and_shift, 8 * 20),
    "is_multiple": (is_multiple, 49),
    "clamp": (clamp, 31 * 26),
    "count_text": (count_text, 26 + 26 * 25),
    "replace_letter": (replace_letter, 26 * 25),
    "remove_letter": (remove_letter, 26 + 26 * 26),
    "add_affix": (add_affix, 2 * (26**2 + 26**3 + 26**4)),
    "repeat_text": (repeat_text, 5 * 7),
    "filter_compare": (filter_compare, 2 * 51),
    "sum_compare": (sum_compare, 2 * 51),
    "count_compare": (count_compare, 2 * 51),
    "map_list": (map_list, 2 * 29),
    "slice_list": (slice_list, 4 * 6),
    "extreme_plus": (extreme_plus, 2 * 50),
    "count_long_words": (count_long_words, 3 * 7),
}


class CodeSynthParams(BaseModel):
    """Which function families, how many tests, the held-out split and the prompt of the code_synth task."""

    model_config = ConfigDict(extra="forbid")

    families: list[str] = Field(default_factory=lambda: list(FAMILIES), min_length=1,
                                description=f"Function families to draw from, uniformly: {', '.join(FAMILIES)}.")
    shown_examples: int = Field(2, ge=0, le=5, description="Input/output examples shown in the prompt (also tested).")
    hidden_tests: int = Field(5, ge=1, le=20, description="Extra test cases the prompt does not show (edge cases "
                              "such as an empty list come first).")
    eval_fraction: float = Field(0.2, gt=0, lt=1, description="Share of each family's functions (keys) routed to "
                                 "the held-out split, by a fixed hash of the key.")
    eval_size: int = Field(200, ge=0, description="Number of held-out problems (distinct functions).")
    eval_seed: int = Field(0, description="Seed of the held-out draws, independent of the run seed.")
    prompt_template: str = Field(
        "Write a Python function {problem}\n\nReply with only the function in a ```python code block.",
        description="User message; {problem} is replaced by \"`f(x)` that returns ....\" and the examples "
                    "(literal braces: {{ }}).")
    system_prompt: str | None = Field(
        None, description="If set, prompts are chat messages: this system message, then the user message.")

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, template: str) -> str:
        return check_template(template, "problem")

    @field_validator("families")
    @classmethod
    def _known_families(cls, families: list[str]) -> list[str]:
        unknown = [f for f in families if f not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown families {unknown}; choose from {', '.join(FAMILIES)}")
        if len(set(families)) != len(families):
            raise ValueError(f"families must not repeat (got {families})")
        return families

    @model_validator(mode="after")
    def _eval_fits(self) -> CodeSynthParams:
        pool = int(sum(FAMILIES[f][1] for f in self.families) * self.eval_fraction)
        if self.eval_size > pool // 2:
            raise ValueError(f"eval_size ({self.eval_size}) is too large: these families hold about {pool} held-out "
                             f"functions and eval may take at most half; set eval_size <= {pool // 2}, raise "
                             "eval_fraction or add families")
        return self


def split_of(key: tuple, eval_fraction: float) -> str:
    """"eval" or "train" for a function key: a fixed hash, the same for every seed and every run."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return "eval" if int.from_bytes(digest[:8], "big") / 2**64 < eval_fraction else "train"


def reference_function(draft: Draft) -> Callable[[Any], Any]:
    namespace: dict[str, Any] = {}
    exec(solution_source(draft), namespace)  # our own generated code, never model output
    return namespace[draft.fn_name]


def solution_source(draft: Draft) -> str:
    return f"def {draft.fn_name}({draft.arg}):\n    {draft.body}\n"


class CodeSynthTask:
    """Seeded small-function problems; see the module docstring for how train and eval stay disjoint."""

    def __init__(self, params: CodeSynthParams, seed: int, name: str = "code_synth"):
        self.name = name
        self.params = params
        self.seed = seed
        self._eval = self._build_eval()

    def train_example(self, index: int) -> Example:
        for attempt in range(MAX_ATTEMPTS):
            rng = random.Random(f"code_synth:train:{self.seed}:{index}:{attempt}")
            draft = self._draw(rng)
            if split_of(draft.key, self.params.eval_fraction) == "train":
                return self._example(f"train/{index}", draft, rng)
        raise RuntimeError(f"task {self.name!r}: no training function for example {index}; lower eval_fraction")

    def eval_examples(self) -> list[Example]:
        return list(self._eval)

    def _build_eval(self) -> list[Example]:
        examples: list[Example] = []
        seen: set[tuple] = set()
        for draw in range(MAX_ATTEMPTS + 100 * self.params.eval_size):
            if len(examples) == self.params.eval_size:
                return examples
            rng = random.Random(f"code_synth:eval:{self.params.eval_seed}:{draw}")
            draft = self._draw(rng)
            if draft.key not in seen and split_of(draft.key, self.params.eval_fraction) == "eval":
                seen.add(draft.key)
                examples.append(self._example(f"eval/{len(examples)}", draft, rng))
        if len(examples) < self.params.eval_size:
            raise RuntimeError(f"task {self.name!r}: only {len(examples)} distinct held-out functions found; lower "
                               "eval_size, raise eval_fraction or add families")
        return examples

    def _draw(self, rng: random.Random) -> Draft:
        return FAMILIES[rng.choice(self.params.families)][0](rng)

    def _example(self, key: str, draft: Draft, rng: random.Random) -> Example:
        fn = reference_function(draft)
        shown = [draft.draw_input(rng) for _ in range(self.params.shown_examples)]
        hidden = list(draft.edge_inputs[:self.params.hidden_tests])
        hidden += [draft.draw_input(rng) for _ in range(self.params.hidden_tests - len(hidden))]
        cases = [{"args": [x], "expected": fn(x)} for x in shown + hidden]
        lines = "\n".join(f"{draft.fn_name}({x!r}) == {fn(x)!r}" for x in shown)
        problem = f"`{draft.fn_name}({draft.arg})` that {draft.spec}." + (f"\n\nExamples:\n{lines}" if shown else "")
        text = self.params.prompt_template.format(problem=problem)
        return Example(
            id=f"{self.name}/{key}",
            task=self.name,
            prompt=build_prompt(text, self.params.system_prompt),
            reference={"tests": {"kind": "call", "fn_name": draft.fn_name, "cases": cases}},
            meta={"family": draft.key[0], "key": ":".join(map(str, draft.key)), "solution": solution_source(draft)},
        )


SPEC = TaskSpec(
    name="code_synth",
    description="Procedurally generated small Python functions (ints, strings, lists) graded by hidden unit tests.",
    Params=CodeSynthParams,
    build=CodeSynthTask,
)
