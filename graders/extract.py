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

Not covered: answers split across several boxes, numbers written in words ("forty-two").
"""
from __future__ import annotations

import re

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


def parse_number(text: str) -> float | None:
    """A plain number (thousands separators, decimals, `a/b` and `\\frac{a}{b}` fractions), else None.
    `text` must be only that."""
    text = text.strip().replace("\\!", "").replace("{,}", ",")
    if NUMBER_RE.fullmatch(text):
        return float(text.replace(",", ""))
    fraction = FRACTION.match(text) or LATEX_FRACTION.match(text)
    if fraction:
        sign, num, den = ("", *fraction.groups()) if fraction.re is FRACTION else fraction.groups()
        den_value = float(den.replace(",", ""))
        value = float(num.replace(",", "")) / den_value if den_value else None
        return -value if value is not None and sign == "-" else value
    return None


def last_number(text: str) -> float | None:
    """The last number written anywhere in `text`."""
    numbers = NUMBER_RE.findall(text)
    return float(numbers[-1].replace(",", "")) if numbers else None
