"""Cheap rules around the classifier.

`plain_by_rule` rules SoT out before any model runs: questions whose answer is a chain (math, code, a
how-to in a named language or tool, step-by-step reasoning or an ordered procedure), one piece of prose
(stories, poems, letters, role-play), a transformation of given text, a required output format (table,
JSON), or a short fact or answer ("answer in two sentences", "suggest a name"). `asks_for_points` looks for what SoT's own definition of a suitable
question needs, an answer made of several independent points: an enumerating noun ("ways", "causes",
"benefits"), an advice frame ("how can I", "what should we") or a counterfactual ("what if"). The
router asks the classifier to be very sure when that cue is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_I = re.IGNORECASE


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern[str]
    why: str


RULES: tuple[Rule, ...] = (
    Rule(
        "code",
        re.compile(
            r"```|\bdef \w+\(|\bfunction\s*\(|#include|\b(write|implement|debug|fix|refactor|optimi[sz]e)\b"
            r"[^.?!]{0,60}\b(code|function|program|script|class|method|query|algorithm|regex|"
            r"regular expression|api|bug|snippet)\b|\b(sql|python|java|javascript|c\+\+|rust|bash|html|css)\s+"
            r"(code|function|program|script|query|snippet)",
            _I,
        ),
        "code is one connected unit",
    ),
    Rule(
        "tooling",
        re.compile(
            r"(?i:\b(in|using|(?<!compared )with|use|via)\s+(python|java(script)?|typescript|c\+\+|c#|sql|matlab|excel|latex|"
            r"bash|shell|powershell|html|css|swift|kotlin|rust|golang|php|ruby|scala|node\.?js|react|pandas|"
            r"numpy|docker|kubernetes|linux|ubuntu|windows|nginx|postgres\w*|mysql|regular expressions?|regex)(?!\w)"
            r"|\b(shell|terminal|command[- ]line|bash|git|sql)\s+(command|query|queries)\b)|\b[A-Z]\w*Error\b",
        ),
        "a how-to in a named language or tool is code or a chain of commands",
    ),
    Rule(
        "format",
        re.compile(
            r"\b(in|as|into)\s+(a\s+|the\s+form\s+of\s+a\s+)?(table|json|xml|yaml|csv|markdown|latex)\b"
            r"|\bjson\b|\bformatted as\b",
            _I,
        ),
        "a required output format is one structured piece",
    ),
    Rule(
        "math",
        re.compile(
            r"\d\s*[-+*/^×÷=]\s*\d|\b(solve|calculate|compute|simplify|integral|derivative|equation|"
            r"prove|probability|percent(age)?|how much will|how many ways)\b|\bf\(\w\)|%",
            _I,
        ),
        "math is a chain of dependent steps",
    ),
    Rule(
        "step_by_step",
        re.compile(
            r"step[- ]by[- ]step|\b(walk me through|explain your (reasoning|answer|calculation)|"
            r"show your (work|reasoning|calculation)|reason it out|estimate)\b"
            r"|\bthe (main )?(steps|stages) (to|for|involved|required|needed)\b|\bin (the )?order (they|that|in which)\b"
            r"|\bchronological\b|\bgo through the process\b",
            _I,
        ),
        "the answer is a chain of reasoning",
    ),
    Rule(
        "writing",
        re.compile(
            r"^\s*(please\s+)?(write|compose|draft|create|generate|craft)\s+(me\s+)?(a|an|the|some|my|\d+)?\s*"
            r"([\w-]+\s+){0,3}(poem|story|stories|song|lyrics|letter|e-?mail|essay|speech|haiku|limerick|"
            r"sonnet|script|dialogue|tweet|post|blog|review|advert\w*|slogan|joke|rap|note|paragraph|"
            r"description|summary|novel|chapter|headline|caption|toast|eulogy|invitation|cover letter|abstract|"
            r"article|report|proposal|biography|resume|cv)",
            _I,
        ),
        "the answer is one piece of prose",
    ),
    Rule(
        "rewrite",
        re.compile(
            r"^\s*(please\s+)?(rewrite|rephrase|paraphrase|translate|summari[sz]e|proofread|correct|"
            r"edit|shorten|expand|convert|classify|categori[sz]e|sort|extract|complete|fill in)\b",
            _I,
        ),
        "the answer transforms the given text",
    ),
    Rule(
        "roleplay",
        re.compile(
            r"\b(pretend|role-?play|act as|acting as|imagine (that )?you are)\b|^\s*you are (a|an|the)\s|"
            r"^\s*as an? [\w\s-]{1,40}, (how|what) (would|do|will) you\b",
            _I,
        ),
        "role-play is one voice speaking on",
    ),
    Rule(
        "short_fact",
        re.compile(
            r"^\s*(who|when|where|whose)\b[^,;]{0,80}\?\s*$|^\s*(what|how)\s+(is|was|are)\s+the\s+"
            r"(capital|currency|symbol|population|date|name|tallest|largest|smallest|longest|"
            r"boiling|freezing|speed|distance)\b|^\s*(hi|hello|hey|thanks|thank you)\b"
            r"|\b(answer|reply|respond) (briefly|in (one|two|three|a few) (sentences?|words))|\bin (one|a single|two|"
            r"three|a few) sentences\b|\b(no|not) more than \d+ words\b|\bjust (list|name|give) (them|it)\b|"
            r"\bwithout (any )?(explanation|commentary)\b|\bno further commentary\b|^\s*name the\b|"
            r"\b(suggest|give|propose|come up with) (me )?(a|one) ([\w-]+ ){0,2}(name|title|slogan|tagline)\b",
            _I,
        ),
        "the answer is a short fact or a reply",
    ),
)

_ENUMERATING = (
    r"ways?|tips|reasons|factors|causes|effects|benefits|advantages|disadvantages|drawbacks|pros|cons|"
    r"differences|similarities|features|characteristics|examples|types|kinds|strategies|methods|ideas|"
    r"habits|signs|clues|qualities|skills|challenges|risks|threats|dangers|concerns|issues|problems|"
    r"consequences|impacts|implications|uses|applications|roles|responsibilities|principles|elements|"
    r"components|aspects|considerations|things|criticisms|arguments|misconceptions|symptoms|side effects|"
    r"practices|rules|lessons|options|recommendations|suggestions|measures|changes|contributions|"
    r"achievements|themes|goals|functions|adaptations|branches|areas|advice"
)
LIST_CUE = re.compile(
    rf"\b({_ENUMERATING})\b"
    r"|\bwhat (are|were) (the |some |a few |common |main |key |most |important |major )*[\w-]+s\b"
    r"|\bhow (can|could|should|might) \w+|\bwhat (should|can|could) (i|we|you|one|a|an|the)\b|\bhow to\b"
    r"|\bwhat if\b|\bwhat would (happen|change|be)\b|\bhow would\b.*\b(change|different|differ|look)\b"
    r"|\bimagine a world\b|\bin a world where\b|\bwhy (might|would) \w+|\bwhat makes\b"
    r"|\b(discuss|describe) the (main|major|key)\b",
    _I,
)

MIN_WORDS = 4  # "What is love?" needs no outline


def plain_by_rule(question: str) -> Rule | None:
    """The first rule that says SoT would hurt this question, or None."""
    if len(question.split()) < MIN_WORDS:
        return Rule("too_short", re.compile(""), f"fewer than {MIN_WORDS} words")
    for rule in RULES:
        if rule.pattern.search(question):
            return rule
    return None


def asks_for_points(question: str) -> bool:
    """Whether the question's wording asks for several points (see LIST_CUE)."""
    return LIST_CUE.search(question) is not None
