"""The `math` grader: is the completion's final answer mathematically equal to the reference `answer`?

Built on math-verify (LaTeX/expression parsing and sympy comparison); this module adds what a training run
needs around it:
- answer extraction: `<answer>...</answer>` tags (math-verify alone misses them), then math-verify's own
  extraction (`\\boxed{}`, "final answer is", last expression);
- hedging is wrong: several different boxed/tagged answers, or a list of candidates where the reference is
  one value, score 0 with `error="hedging"` (the reward-hacking monitor counts these);
- a strict set/interval check: math-verify reads `(1,2)` as an open interval and calls it equal to `\\{1,2\\}`;
  in strict mode a finite set never equals an interval;
- numbers compared exactly (`_numbers_agree`): equal, or a correct rounding to the decimals written, at least
  `precision` of them (0.333333 is 1/3; 1234567.001 is not 1234567, 0.3333334 is not 1/3, where math-verify
  rounds both sides to 6 places); only float noise past the 15th significant digit is ignored. This holds in
  the fast path and wherever one side is a written decimal and the other a constant (`\\sqrt{2}`, `e^2-1`);
- read as numbers: currency (`\\$18.90`, `18.90 dollars`), scientific notation (`1e3`, `1.5\\times10^{3}`);
- `\\mathrm{e}`, `\\text{e}`, `{\\rm e}`, `\\mathrm{i}` are the constants (math-verify drops them as units, so
  `3-\\mathrm{e}` read as 3), and a unit strip that took a term of an expression (`3+2t` read as 5) is undone;
- a fast path for plain numbers and `\\frac{a}{b}` (most GSM8K-style answers) that skips sympy entirely, and
  a fast reject for constant answers whose values clearly differ (no symbolic simplification);
- a bare reference like `1,22` is ambiguous (a list, or a decimal comma): either reading is accepted;
- input guards: non-string, empty, over-long or absurdly nested completions get a specific error.
math-verify's signal.alarm timeouts are switched off (they fail outside the main thread): run this grader
through graders.pool / RewardScorer, whose hard timeout covers every input.

    >>> from graders import Sample
    >>> math_grader(Sample("So $x=\\\\frac{2}{4}$, i.e. \\\\boxed{0.5}", {"answer": "\\\\frac{1}{2}"}))
    Grade(score=1.0, correct=True, metrics={}, error=None, mask=False)
    >>> math_grader(Sample("\\\\boxed{3} or maybe \\\\boxed{4}", {"answer": "4"})).error
    'hedging'

Not covered: answers in words ("seven"), multiple-choice letters (use `exact`), proofs. The exact-number rule
covers a plain written number (units stripped) against a number or constant; numbers inside sets, tuples,
equations or products (`2.5\\pi`) are left to math-verify, which rounds them to `precision` places. A letter
glued to a number (`5m`) is still read as a unit, as math-verify does.
"""
from __future__ import annotations

import logging
import re
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Literal, Mapping

import sympy
from math_verify import ExprExtractionConfig, LatexExtractionConfig, LatexNormalizationConfig, parse, verify
from pydantic import BaseModel, ConfigDict, Field

from graders import extract
from graders.base import Grade, Sample
from graders.function import grader

PROSE = re.compile(r"(?<![\\a-zA-Z])[a-zA-Z]{3,}\s+[a-zA-Z]{2,}")  # two words in a row, not \commands
AMBIGUOUS_COMMA = re.compile(r"-?\d+(?:,-?\d+)+")  # not thousands groups (those are read as numbers first)
NAMED_CONSTANT = re.compile(  # \mathrm{e}, \text{e}, {\rm e}, \mathrm{i}: math-verify strips them as units
    r"\\(?:mathrm|textrm|text|mathit|mathnormal|operatorname)\s*\{\s*(e|i|\\pi)\s*\}|\{\s*\\rm\s+(e|i)\s*\}")
DANGLING = re.compile(r"(?:[-+*/^=(,]|\\(?:cdot|times|div|pm|mp))\s*$")  # "3-": a stripped unit was a term
TAIL_WORD = re.compile(r"(?<![a-zA-Z\\{])(?<!\{\s)([a-zA-Z]{1,3})(?:[\s.$}]|\\\]|\\\))*$")  # "3+2t", not \text{ m}
LATEX_SPACE_TAIL = re.compile(r"(?:\\[,;:! ]|~|\s)+$")
logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout disabled" notices: the pool times out


class Params(BaseModel):
    """Options of the `math` grader."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    answer_field: str = Field("answer", description="Reference field holding the gold answer (LaTeX or plain).")
    strict: bool = Field(True, description="Variables must match and sets never equal tuples or intervals; "
                                           "False matches variables by position and sets with tuples.")
    precision: int = Field(6, ge=0, le=15, description=(
        "Fewest decimal places a rounded number may keep: 0.333333 equals 1/3 at 6, 0.33 does not. A number "
        "is never forgiven digits it wrote: 1234567.001 is not 1234567, 0.3333334 is not 1/3."))
    units: Literal["ignore", "keep"] = Field("ignore", description="'ignore': `5\\text{ cm}` equals 5; "
                                                                   "'keep': units are part of the answer.")
    percent: Literal["lenient", "value"] = Field(
        "lenient", description="'lenient': 50\\% equals 50 and 0.5; 'value': a percentage is its value "
                               "(50\\% equals 0.5, not 50).")
    hedging: bool = Field(True, description="Score 0 (error 'hedging') when the completion gives several "
                                            "different final answers or a list where one value is expected.")
    max_chars: int = Field(100_000, gt=0, description="Longer completions score 0 with 'completion_too_long'.")
    max_depth: int = Field(200, gt=0, description="Deeper bracket nesting scores 0 with 'too_deeply_nested'.")


@lru_cache(maxsize=16)
def _configs(units: str) -> tuple:
    latex = LatexExtractionConfig(normalization_config=LatexNormalizationConfig(
        basic_latex=True, units=units == "ignore", malformed_operators=True, nits=True, boxed="all",
        equations=False))
    return latex, ExprExtractionConfig()


def _parse(text: str, units: str, percent: str) -> tuple:
    """math-verify's parse (no signal timeout); short texts (answers, references) are memoised."""
    return _parse_short(text, units, percent) if len(text) <= 2000 else _parse_any(text, units, percent)


def _parse_any(text: str, units: str, percent: str) -> tuple:
    text = NAMED_CONSTANT.sub(lambda m: "{" + (m.group(1) or m.group(2)) + "}", text)
    if percent == "value":
        text = text.replace("\\%", "/100").replace("%", "/100")
    parsed = tuple(parse(text, extraction_config=_configs(units), parsing_timeout=None))
    if units == "ignore" and parsed and _unit_ate_a_term(text, parsed):
        return tuple(parse(text, extraction_config=_configs("keep"), parsing_timeout=None)) or parsed
    return parsed


def _shown(parsed: tuple) -> str:
    """The normalised text math-verify read (units stripped), '' when none."""
    return next((x for x in parsed if isinstance(x, str)), "")


def _unit_ate_a_term(text: str, parsed: tuple) -> bool:
    """math-verify's unit stripping took a term of an expression, not a unit after a number: `3-\\text{m}`
    became `3-`, `3+2t` became `3+2`. A unit after a plain number (`5 cm`, `12\\,\\mathrm{m}`) is fine. Only
    short texts are checked (a long completion is math-verify's extraction alone)."""
    shown = LATEX_SPACE_TAIL.sub("", _shown(parsed))
    if DANGLING.search(shown):
        return True
    word = TAIL_WORD.search(text) if len(text) <= 2000 else None
    if not word or shown.rstrip("} ").endswith(word.group(1)):
        return False
    return extract.parse_written(shown, e_notation=False) is None


_parse_short = lru_cache(maxsize=4096)(_parse_any)


def _parse_span(span: str, params: Params) -> tuple:
    """Parse an answer span: as written when it has math delimiters or is prose (math-verify finds the math
    in it), else as one inline formula."""
    span = extract.strip_currency(span, params.units == "ignore")
    if "$" in span or "\\(" in span or "\\[" in span or PROSE.search(span):
        return _parse(span, params.units, params.percent)
    return _parse(f"${' '.join(span.split())}$", params.units, params.percent)


def _parse_gold(gold: str, params: Params) -> tuple:
    """A reference with delimiters or boxes is parsed whole (several boxes make a set), else its final span.
    Currency signs (and words, units ignored) go first: `\\$18.90`, `18.90 dollars`."""
    gold = extract.strip_currency(gold, params.units == "ignore")
    if any(mark in gold for mark in ("$", "\\(", "\\[", "\\boxed")):
        return _parse(gold, params.units, params.percent)
    parsed = _parse_span(extract.final_answer(gold) or gold, params)
    if AMBIGUOUS_COMMA.fullmatch(gold.strip()):  # "1,22": the list {1, 22} or 1.22 with a decimal comma
        parsed += _parse(gold, params.units, params.percent)
    return parsed


def _equal(gold: tuple, pred: tuple, gold_text: str, pred_text: str, params: Params) -> bool:
    if params.strict and _set_vs_interval(gold, pred, gold_text, pred_text):
        return False
    verdict = _rounding_verdict(gold, pred, gold_text + pred_text, params)
    if verdict is not None:
        return verdict
    if _clearly_different(gold, pred, gold_text + pred_text, params):
        return False
    return verify(list(gold), list(pred), float_rounding=params.precision, strict=params.strict,
                  timeout_seconds=None)


def _numbers_agree(a: extract.Written, b: extract.Written, precision: int) -> bool:
    """Equal, or the coarser one is the finer one rounded to the decimals it was written with, and those are
    at least `precision`: 0.333333 and 0.3333333 equal 1/3 (precision 6), 3.14 equals 3.1416 only at precision
    <= 2. A written number is never forgiven a digit it got wrong: 1234567.001 is not 1234567, 0.3333334 is
    not 1/3, 18.91 is not 18.9. Only digits past the 15th significant one (float noise) are ignored."""
    if a.value == b.value:
        return True
    coarser = min(a.decimals, b.decimals)
    return precision <= coarser < float("inf") and abs(a.value - b.value) * 2 * 10 ** int(coarser) <= 1


def _written(parsed: tuple, params: Params, e_notation: bool) -> extract.Written | None:
    """The number math-verify read, as written (decimals known), when it is a plain number."""
    shown = _shown(parsed)
    return extract.parse_written(shown, params.units == "ignore", e_notation) if shown else None


def _constant(parsed: tuple) -> extract.Written | None:
    """A real constant expression without variables or floats (`\\sqrt{2}`, `e^{2}-1`), exactly (60 digits
    for irrationals). None otherwise."""
    expr = parsed[0] if parsed else None
    if not isinstance(expr, sympy.Expr) or expr.free_symbols or expr.atoms(sympy.Float):
        return None
    try:
        if expr.is_Rational:
            return extract.Written(Fraction(int(expr.p), int(expr.q)), float("inf"))
        value = expr.evalf(60)
        return extract.Written(Fraction(Decimal(str(value))), float("inf")) if value.is_Float else None
    except Exception:  # undefined or non-real values: let math-verify decide
        return None


def _rounding_verdict(gold: tuple, pred: tuple, texts: str, params: Params) -> bool | None:
    """Where one side is a written decimal and the other a number or constant: `_numbers_agree` decides
    (math-verify would round both to `precision` places and forgive a wrong digit). None: not such a pair
    (both exact, an expression with variables, a percentage), math-verify decides."""
    if "%" in texts or "perc" in texts or "pct" in texts:
        return None
    g = _written(gold, params, e_notation=False)
    p = _written(pred, params, e_notation=g is not None)  # 3e-4 is 0.0003 only where the reference is a number
    if not any(side and side.decimals < float("inf") for side in (g, p)):
        return None
    g, p = g or _constant(gold), p or _constant(pred)
    return _numbers_agree(g, p, params.precision) if g and p else None


def _clearly_different(gold: tuple, pred: tuple, texts: str, params: Params) -> bool:
    """Both answers are constants whose values differ well beyond the precision: wrong without sympy's
    (slow) symbolic simplification. Percentages are left to math-verify (50\\% may equal 50)."""
    g, p = gold[0], pred[0]
    if "%" in texts or "perc" in texts or "pct" in texts:
        return False
    if not (isinstance(g, sympy.Expr) and isinstance(p, sympy.Expr)) or g.free_symbols or p.free_symbols:
        return False
    try:
        g_value, p_value = complex(g.evalf(30)), complex(p.evalf(30))
    except Exception:  # infinities, undefined values: let math-verify decide
        return False
    gap = abs(g_value - p_value)
    return gap > 10.0 ** (1 - params.precision) and gap > 1e-6 * max(abs(g_value), abs(p_value))


def _set_vs_interval(gold: tuple, pred: tuple, gold_text: str, pred_text: str) -> bool:
    """True when one side is written as a set (`\\{1,2\\}`) and the other parses to an interval."""
    def written_set(side: tuple, text: str) -> bool:
        return "\\{" in text and any(isinstance(x, sympy.FiniteSet) for x in side)

    def interval(side: tuple) -> bool:
        return any(isinstance(x, sympy.Interval) for x in side) and not any(
            isinstance(x, sympy.FiniteSet) for x in side)

    return (written_set(gold, gold_text) and interval(pred)) or (interval(gold) and written_set(pred, pred_text))


def _single_value(parsed: tuple) -> bool:
    """The reference is one value (a number or an expression), not a set, tuple, equation or matrix."""
    return bool(parsed) and isinstance(parsed[0], sympy.Expr)


def _is_candidate_list(parsed: tuple) -> bool:
    first = parsed[0] if parsed else None
    return isinstance(first, (sympy.FiniteSet, sympy.Tuple)) and len(first.args) > 1


def _hedges(completion: str, pred: tuple, gold: tuple, params: Params) -> bool:
    """Where one value is expected: several different final answers, or a list of candidates."""
    if not _single_value(gold):
        return False
    distinct = list(dict.fromkeys(extract.candidates(completion)))
    if len(distinct) > 1:
        parsed = [_parse_span(d, params) for d in distinct]
        if any(p and not verify(list(parsed[0]), list(p), timeout_seconds=None) for p in parsed[1:]):
            return True
    return _is_candidate_list(pred)


def _prediction(completion: str, gold: tuple, params: Params) -> tuple[str, tuple]:
    """The text holding the answer and its parse. Where one value is expected, the last stated answer
    (tag, "final answer is", box); otherwise, or when that fails to parse, math-verify's own extraction
    over the whole completion (several boxes then make one set)."""
    stated = extract.candidates(completion)
    if stated and (_single_value(gold) or extract.ANSWER_TAG.search(completion)):
        parsed = _parse_span(stated[-1], params)
        if parsed:
            return stated[-1], parsed
    return completion, _parse(completion, params.units, params.percent)


def _plain_last_line(completion: str) -> str | None:
    """The number closing a plain sentence ("So she has 1,234 apples."), where math-verify would also take
    that number: the line's last token with a digit must be a whole number right after a word, and the line
    must have no math markup. None otherwise (math-verify then decides)."""
    line = completion.rstrip().rsplit("\n", 1)[-1]
    if any(mark in line for mark in "$\\^{}=+*/"):
        return None
    tokens = [t.rstrip(".,!?;:") for t in line.split()]
    numbered = [i for i, t in enumerate(tokens) if any(c.isdigit() for c in t)]
    if not numbered or numbered[-1] == 0:
        return None
    last = numbered[-1]
    number, before = tokens[last], tokens[last - 1]
    return number if extract.NUMBER_RE.fullmatch(number) and before.isalpha() else None


def _check_input(sample: Sample, params: Params) -> str | None:
    completion = sample.completion
    if not isinstance(completion, str):
        return f"completion_not_string:{type(completion).__name__}"
    if not completion.strip():
        return "empty_completion"
    if len(completion) > params.max_chars:
        return "completion_too_long"
    gold = sample.reference.get(params.answer_field) if isinstance(sample.reference, Mapping) else None
    if gold is None or (isinstance(gold, str) and not gold.strip()):
        return f"missing_reference:{params.answer_field}"
    if sum(completion.count(c) for c in "({[") <= params.max_depth:
        return None
    depth = deepest = 0
    for char in completion:
        if char in "({[":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")}]":
            depth -= 1
    return "too_deeply_nested" if deepest > params.max_depth else None


@grader("math", params=Params, normalize=str.strip,
        description="Mathematical equivalence of the final answer with `answer` (math-verify, hedging-aware)")
def math_grader(sample: Sample, params: Params) -> Grade:
    """Grade one sample (no timeout here: the pool provides it)."""
    error = _check_input(sample, params)
    if error:
        return Grade(0.0, correct=False, error=error)
    completion, gold_text = sample.completion, str(sample.reference[params.answer_field])
    words = params.units == "ignore"
    gold_number = extract.parse_written(extract.final_answer(gold_text) or gold_text, words)
    stated = set(extract.candidates(completion))
    pred_span = extract.final_answer(completion) or _plain_last_line(completion)
    pred_number = extract.parse_written(pred_span, words) if pred_span else None
    if gold_number and pred_number and (len(stated) <= 1 or not params.hedging):
        ok = _numbers_agree(gold_number, pred_number, params.precision)
        return Grade(float(ok), correct=ok)
    gold = _parse_gold(gold_text, params)
    if not gold:
        return Grade(0.0, correct=False, error="unparseable_reference")
    pred_text, pred = _prediction(completion, gold, params)
    if not pred:
        return Grade(0.0, correct=False, error="no_answer")
    if params.hedging and _hedges(completion, pred, gold, params):
        return Grade(0.0, correct=False, error="hedging")
    ok = _equal(gold, pred, gold_text, pred_text, params)
    return Grade(float(ok), correct=ok)
