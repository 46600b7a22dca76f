"""`arithmetic`: procedurally generated integer arithmetic, seeded, with difficulty knobs.

Each example is an expression such as `37 - 5 * 12` over non-negative integer operands, asked through a prompt
template; reference = {"answer": str(value)} with the usual precedence (* before + and -), and the expression
goes in meta. Knobs: operand digits, operators, number of terms, whether results may be negative.

How the splits stay disjoint and everything stays O(1) per example:
- Every draw comes from its own `random.Random` keyed by a string (stream, seed, index, attempt), so example i
  needs no state and no pre-generation.
- Eval: draws 0, 1, 2, ... of the "eval" stream (keyed by `eval_seed`, not the run seed, so runs with
  different seeds are scored on the same problems), keeping the first `eval_size` distinct expressions.
- Train: example i takes attempt 0, 1, 2, ... of the "train" stream (keyed by the run seed and i) and keeps the
  first draw whose expression is not in the eval set (and whose result is non-negative unless
  `allow_negative`). A skipped draw therefore changes only that one example, deterministically.

Operand digit counts are drawn uniformly in [min_digits, max_digits], then the operand uniformly among numbers
with that many digits (1 digit: 0-9). Not covered: division, parentheses, decimals, negative operands.
"""
from __future__ import annotations

import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tasks.base import Example, TaskSpec, build_prompt, check_template

Operator = Literal["+", "-", "*"]
MAX_ATTEMPTS = 1000  # draws per example before giving up: only a near-empty problem space gets there


class ArithmeticParams(BaseModel):
    """Difficulty knobs and prompt format of the arithmetic task."""

    model_config = ConfigDict(extra="forbid")

    min_digits: int = Field(1, ge=1, le=12, description="Fewest digits in an operand (1 digit: 0-9).")
    max_digits: int = Field(2, ge=1, le=12, description="Most digits in an operand.")
    operators: list[Operator] = Field(
        default_factory=lambda: ["+", "-"], min_length=1, description='Operators to draw from: "+", "-", "*".'
    )
    min_terms: int = Field(2, ge=1, le=8, description="Fewest operands in an expression.")
    max_terms: int = Field(2, ge=1, le=8, description="Most operands in an expression.")
    allow_negative: bool = Field(False, description="Allow negative results (else such draws are redrawn).")
    eval_size: int = Field(200, ge=0, description="Number of held-out eval problems (distinct expressions).")
    eval_seed: int = Field(0, description="Seed of the held-out split, independent of the run seed.")
    prompt_template: str = Field(
        "What is {expression}? Answer with just the number.",
        description="User message; {expression} is replaced by the expression (literal braces: {{ }}).",
    )
    system_prompt: str | None = Field(
        None, description="If set, prompts are chat messages: this system message, then the user message."
    )

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, template: str) -> str:
        return check_template(template, "expression")

    @field_validator("operators")
    @classmethod
    def _unique_operators(cls, operators: list[str]) -> list[str]:
        if len(set(operators)) != len(operators):
            raise ValueError(f"operators must not repeat (got {operators}); weight operators another way")
        return operators

    @model_validator(mode="after")
    def _ranges(self) -> ArithmeticParams:
        if self.min_digits > self.max_digits:
            raise ValueError(f"min_digits ({self.min_digits}) must be <= max_digits ({self.max_digits})")
        if self.min_terms > self.max_terms:
            raise ValueError(f"min_terms ({self.min_terms}) must be <= max_terms ({self.max_terms})")
        space = problem_space(self)
        if self.eval_size > space // 4:
            raise ValueError(
                f"eval_size ({self.eval_size}) is too large for this problem space ({space} distinct "
                f"expressions; eval may take at most a quarter): set eval_size <= {space // 4}, or widen "
                "max_digits, max_terms or operators"
            )
        return self


def problem_space(params: ArithmeticParams) -> int:
    """How many distinct expressions the knobs allow (before dropping negative results)."""
    operands = sum(10 if d == 1 else 9 * 10 ** (d - 1) for d in range(params.min_digits, params.max_digits + 1))
    ops = len(params.operators)
    return sum(operands**t * ops ** (t - 1) for t in range(params.min_terms, params.max_terms + 1))


def evaluate(operands: list[int], operators: list[str]) -> int:
    """Value of operands[0] op operators[0] operands[1] ..., with * before + and -."""
    total, sign, term = 0, 1, operands[0]
    for op, x in zip(operators, operands[1:]):
        if op == "*":
            term *= x
        else:
            total, sign, term = total + sign * term, (1 if op == "+" else -1), x
    return total + sign * term


def draw_expression(rng: random.Random, params: ArithmeticParams) -> tuple[str, int]:
    """One random expression and its value."""
    n_terms = rng.randint(params.min_terms, params.max_terms)
    operands = []
    for _ in range(n_terms):
        digits = rng.randint(params.min_digits, params.max_digits)
        operands.append(rng.randint(0 if digits == 1 else 10 ** (digits - 1), 10**digits - 1))
    operators = [rng.choice(params.operators) for _ in range(n_terms - 1)]
    expression = str(operands[0]) + "".join(f" {op} {x}" for op, x in zip(operators, operands[1:]))
    return expression, evaluate(operands, operators)


class ArithmeticTask:
    """Seeded arithmetic problems; see the module docstring for how train and eval stay disjoint."""

    def __init__(self, params: ArithmeticParams, seed: int, name: str = "arithmetic"):
        self.name = name
        self.params = params
        self.seed = seed
        self._eval = self._build_eval()
        self._eval_expressions = {example.meta["expression"] for example in self._eval}

    def train_example(self, index: int) -> Example:
        for attempt in range(MAX_ATTEMPTS):
            rng = random.Random(f"arithmetic:train:{self.seed}:{index}:{attempt}")
            expression, value = draw_expression(rng, self.params)
            if expression not in self._eval_expressions and self._allowed(value):
                return self._example(f"train/{index}", expression, value)
        raise RuntimeError(self._exhausted(f"training example {index}"))

    def eval_examples(self) -> list[Example]:
        return list(self._eval)

    def _build_eval(self) -> list[Example]:
        examples: list[Example] = []
        seen: set[str] = set()
        limit = MAX_ATTEMPTS + 100 * self.params.eval_size
        for draw in range(limit):
            if len(examples) == self.params.eval_size:
                break
            rng = random.Random(f"arithmetic:eval:{self.params.eval_seed}:{draw}")
            expression, value = draw_expression(rng, self.params)
            if expression not in seen and self._allowed(value):
                seen.add(expression)
                examples.append(self._example(f"eval/{len(examples)}", expression, value))
        if len(examples) < self.params.eval_size:
            raise RuntimeError(self._exhausted(f"the eval split ({len(examples)} of {self.params.eval_size})"))
        return examples

    def _allowed(self, value: int) -> bool:
        return self.params.allow_negative or value >= 0

    def _example(self, key: str, expression: str, value: int) -> Example:
        text = self.params.prompt_template.format(expression=expression)
        return Example(
            id=f"{self.name}/{key}",
            task=self.name,
            prompt=build_prompt(text, self.params.system_prompt),
            reference={"answer": str(value)},
            meta={"expression": expression},
        )

    def _exhausted(self, what: str) -> str:
        return (
            f"task {self.name!r}: no usable expression for {what} after many draws: most draws are negative or "
            "in the eval set. Set allow_negative: true, lower eval_size, or widen max_digits / max_terms."
        )


SPEC = TaskSpec(
    name="arithmetic",
    description="Procedurally generated integer arithmetic (+, -, *) with digit, operator and term knobs.",
    Params=ArithmeticParams,
    build=ArithmeticTask,
)
