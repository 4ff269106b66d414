"""Chain-of-thought lines: an equation is one unit, and a demonstration's answer line is always kept.

`100+12+5=117`, `25*2= 50`, `3 hours x 2 chapters = 6` and `$0.50 * 12 = $6` are kept or dropped whole:
pruning an operator or an operand ('100++117', '25*= 50') leaves a wrong calculation, which is worse
than none. 'The answer is 4' (or 'Answer: ...', '#### 4') closes a demonstration: it is kept whenever
its demonstration is, since the demonstration shows how an answer is stated.
"""

from __future__ import annotations

import re

_NUMBER = r"[$€£]?\d+(?:[.,]\d+)*%?"
# an operand is a number, maybe in parentheses, maybe followed by a few words ('3 hours', '12 boxes')
_OPERAND = rf"\(?{_NUMBER}\)?(?:[ \t]+[A-Za-z]+(?:/[A-Za-z]+)?){{0,4}}?"
_OPERATOR = r"[ \t]*[-+*/×÷x·][ \t]*"
EQUATION = re.compile(rf"(?<![\w.$€£]){_OPERAND}(?:{_OPERATOR}{_OPERAND})+[ \t]*=[ \t]*{_NUMBER}(?![\d])")
ANSWER_LINE = re.compile(r"(?im)^[ \t]*(?:the (?:final )?answer is\b|answer:[ \t]*\S|####[ \t]*\S)[^\n]*")


def equations(text: str) -> list[tuple[int, int]]:
    """[start, end) of every `a op b (op c ...) = d` of `text`."""
    return [m.span() for m in EQUATION.finditer(text)]


def answer_lines(text: str) -> list[tuple[int, int]]:
    """[start, end) of every line that states a final answer ('The answer is 4'), without its line break."""
    return [m.span() for m in ANSWER_LINE.finditer(text)]
