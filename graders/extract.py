"""Find the final answer in a completion, and read plain numbers. Shared by the math, number and exact graders.

Why: small models write answers as `\\boxed{42}`, `<answer>42</answer>`, `The final answer is 42.` or
`#### 42`; graders must read the same span the same way. This is text scanning (brace matching, anchors),
not LaTeX parsing: the math grader hands the span to math-verify.

    >>> final_answer("so x = 3. The final answer is $\\\\frac{1}{2}$.")
    '$\\\\frac{1}{2}$'
    >>> boxed("\\\\boxed{1} or \\\\boxed{\\\\frac{2}{3}}")
    ['1', '\\\\frac{2}{3}']
    >>> parse_number("1,234.5"), parse_number("-3/4"), parse_number("-\\\\dfrac{1}{4}"), parse_number("x+1")
    (1234.5, -0.75, -0.25, None)
    >>> parse_written("\\\\$1,234.50"), parse_written("2.5e-3").decimals, parse_written("1.5\\\\times10^{3}").value
    (Written(value=Fraction(2469, 2), decimals=2), 4, Fraction(1500, 1))

Not covered: answers split across several boxes, numbers written in words ("forty-two").
"""
from __future__ import annotations

import math
import re
from decimal import Context, Decimal
from fractions import Fraction
from typing import NamedTuple

BRACES = re.compile(r"\\(?:boxed|fbox)\s*\{|[{}]")
ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.DOTALL | re.IGNORECASE)
SENTENCE = r"([^\n]+?)(?=\.\s|\.?\s*$)"  # up to the end of the sentence or line
FINAL_STATEMENT = re.compile(r"final answer\s*(?:is|:)\s*:?\s*" + SENTENCE, re.IGNORECASE | re.MULTILINE)
ANCHOR = re.compile(r"answer\s*(?:is|:)\s*:?\s*" + SENTENCE, re.IGNORECASE | re.MULTILINE)
GSM8K_ANCHOR = re.compile(r"####\s*(.+)")
NUMBER = r"[-+]?(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?|[-+]?\.\d+"
NUMBER_RE = re.compile(NUMBER)
FRACTION = re.compile(rf"^({NUMBER})\s*/\s*({NUMBER})$")
LATEX_FRACTION = re.compile(rf"^([-+]?)\\[dt]?frac\{{({NUMBER})\}}\{{({NUMBER})\}}$")
DECORATION = re.compile(r"^[\s$]*(?:\\\(|\\\[)?\s*|\s*(?:\\\)|\\\])?[\s$.]*$")
MANTISSA = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
SCIENTIFIC = re.compile(  # 1.5e3, 2.5E-3, 1.5\times10^{3}, 1.5 \cdot 10^3, 1.5×10^3
    rf"(?P<mantissa>{MANTISSA})(?:(?P<e>[eE])|\s*(?:\\times|\\cdot|×|·|\*)\s*10\s*\^\s*)"
    rf"(?:\{{\s*(?P<braced>[-+]?\d+)\s*\}}|(?P<exponent>[-+]?\d+))")
CURRENCY_HINT = re.compile(r"[$€£¥]|[A-Za-z]{3}")  # nothing to strip without one of these
CURRENCY_SIGN = re.compile(r"\\\$|US\$|\\euro\b|\\pounds\b|[€£¥]")
LONE_DOLLAR = re.compile(r"(?<!\\)\$(?=\s*[-+]?\.?\d)")  # "$18.90": a price, not a math delimiter
CURRENCY_WORD = re.compile(
    r"^\s*(?:USD|EUR|GBP)\s*|\s*(?:\\(?:text|mathrm|mbox)\s*\{\s*)?(?:US\s+)?"
    r"(?:dollars?|USD|euros?|EUR|GBP|pounds?)\s*\}?\s*$", re.IGNORECASE)
MAX_WRITTEN_CHARS = 1000  # longer "numbers" are left to math-verify (exact arithmetic on them is slow)
DOUBLE_DIGITS = 15  # significant digits a float carries: more are float noise (0.30000000000000004)


class Written(NamedTuple):
    """A number as written: its exact value, and the decimal places written (`math.inf` for a fraction)."""

    value: Fraction
    decimals: float


def boxed(text: str) -> list[str]:
    """Contents of every \\boxed{...} / \\fbox{...}, braces matched, in order; unclosed boxes are ignored.
    One pass over the text, so a flood of unclosed boxes costs linear time."""
    found, open_braces = [], []  # open_braces: (is a box, where its content starts)
    for token in BRACES.finditer(text):
        if token.group() == "}":
            if open_braces:
                is_box, start = open_braces.pop()
                if is_box:
                    found.append((start, text[start:token.start()]))
        else:
            open_braces.append((token.group() != "{", token.end()))
    return [content for _, content in sorted(found)]


def candidates(text: str) -> list[str]:
    """The final answers a text states, in its most explicit form: `<answer>` tags, else "final answer is"
    statements, else `\\boxed{}` contents. Boxes inside a tag or statement are unwrapped."""
    for spans in (ANSWER_TAG.findall(text), FINAL_STATEMENT.findall(text), boxed(text)):
        if spans:
            return [boxed(span)[-1] if boxed(span) else span.strip() for span in spans]
    return []


def final_answer(text: str) -> str | None:
    """The span holding the final answer: the last candidate, else the last `####` or "answer is" line."""
    found = candidates(text)
    if found:
        return found[-1]
    for anchor in (GSM8K_ANCHOR, ANCHOR):
        lines = anchor.findall(text)
        if lines:
            return lines[-1].strip()
    return None


def strip_decoration(span: str) -> str:
    """Remove math delimiters, a trailing full stop and surrounding space: `$42$.` -> `42`."""
    return DECORATION.sub("", span)


def parse_number(text: str, exact: bool = False) -> float | Fraction | None:
    """A plain number (thousands separators, decimals, `a/b` and `\\frac{a}{b}` fractions), else None.
    `text` must be only that. `exact`: a Fraction (a float past MAX_WRITTEN_CHARS characters)."""
    text = text.strip().replace("\\!", "").replace("{,}", ",")
    if NUMBER_RE.fullmatch(text):
        return _value(text, exact)
    fraction = FRACTION.match(text) or LATEX_FRACTION.match(text)
    if fraction:
        sign, num, den = ("", *fraction.groups()) if fraction.re is FRACTION else fraction.groups()
        den_value = _value(den, exact)
        value = _value(num, exact) / den_value if den_value else None
        return -value if value is not None and sign == "-" else value
    return None


def _value(number: str, exact: bool) -> float | Fraction:
    number = number.replace(",", "")
    return Fraction(number) if exact and len(number) <= MAX_WRITTEN_CHARS else float(number)


def strip_currency(text: str, words: bool = True) -> str:
    """Remove currency signs (`\\$`, a lone `$` before a number, `US$`, `€`, `£`, `¥`) and, with `words`, a
    currency word or code (`18.90 dollars`, `\\text{ USD}`, `EUR 5`). Paired `$...$` delimiters are kept."""
    if not CURRENCY_HINT.search(text):
        return text
    text = CURRENCY_SIGN.sub("", text)
    if len(re.findall(r"(?<!\\)\$", text)) % 2:
        text = LONE_DOLLAR.sub("", text, count=1)
    return CURRENCY_WORD.sub("", text) if words else text


def parse_written(text: str, currency_words: bool = True, e_notation: bool = True) -> Written | None:
    """A plain number read exactly, with the decimals it was written with: decimals and integers (thousands
    separators), scientific notation (`1.5e3`, `1.5\\times10^{3}`: 1500 written to the hundreds, decimals -2;
    `2.5e-3`: decimals 4), fractions `a/b` and `\\frac{a}{b}` (exact: infinitely many decimals), currency
    signs (and currency words when `currency_words`), math delimiters. Digits past the 15th significant one
    are float noise and are rounded away. None for anything else (expressions, percentages, units, words).
    `e_notation=False` leaves `3e-4` alone (in LaTeX read by math-verify, e is Euler's number: 3e - 4)."""
    text = strip_decoration(strip_currency(text, currency_words)).replace("\\!", "").replace("{,}", ",")
    if len(text) > MAX_WRITTEN_CHARS:
        return None
    if NUMBER_RE.fullmatch(text):
        plain = text.replace(",", "")
        return Written(Fraction(int(plain)), 0) if "." not in plain else _written_decimal(Decimal(plain))
    scientific = SCIENTIFIC.fullmatch(text)
    if scientific and (e_notation or not scientific["e"]):
        mantissa, exponent = scientific["mantissa"], scientific["braced"] or scientific["exponent"]
        return _written_decimal(Decimal(f"{mantissa}E{exponent}")) if abs(int(exponent)) <= 400 else None
    fraction = FRACTION.match(text) or LATEX_FRACTION.match(text)
    if fraction:
        sign, num, den = ("", *fraction.groups()) if fraction.re is FRACTION else fraction.groups()
        num_value, den_value = (Fraction(Decimal(n.replace(",", ""))) for n in (num, den))
        if den_value:
            return Written(-num_value / den_value if sign == "-" else num_value / den_value, math.inf)
    return None


def _written_decimal(number: Decimal) -> Written:
    _, digits, exponent = number.as_tuple()
    noise = min(len(digits) - DOUBLE_DIGITS, -exponent)  # digits past the 15th, and only after the point
    if noise > 0:
        exponent += noise
        number = number.quantize(Decimal(1).scaleb(exponent), context=Context(prec=len(digits) + 1))
    return Written(Fraction(number), -exponent)


def last_number(text: str, exact: bool = False) -> float | Fraction | None:
    """The last number written anywhere in `text` (`exact`: as in parse_number)."""
    numbers = NUMBER_RE.findall(text)
    return _value(numbers[-1], exact) if numbers else None
