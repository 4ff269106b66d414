"""The typed sampling fields beyond temperature and top-p, and the one place their values are checked.

Ranges follow the OpenAI API and vLLM, so a value one of them refuses is refused here too, as an
`InvalidRequest` (HTTP 400) whose `param` is the OpenAI field name. Checking up front is what keeps one
bad request from reaching the engine, where it would poison a whole batch step (a seed past int64,
a temperature of 1e-40).

`lift_openai_fields` moves fields a caller passed under their OpenAI/vLLM names in `extra` (as the
proxy's passthrough does) into the typed fields, so `extra` keeps only what nobody here interprets.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from .errors import InvalidRequest

if TYPE_CHECKING:
    from .base import Prompt, SamplingParams

SEED_MIN, SEED_MAX = -(2**63), 2**63 - 1  # OpenAI's seed is an int64
MIN_TEMPERATURE = 0.01  # below it (but above 0) the softmax overflows; vLLM clamps to the same floor
MAX_TEMPERATURE = 2.0
MAX_TOP_LOGPROBS = 20  # OpenAI's limit
MAX_LOGIT_BIAS = 100.0
PENALTY_RANGE = (-2.0, 2.0)  # frequency and presence, as in the OpenAI API

# Fields that describe the client, not the decoding: an OpenAI-compatible server gets them, an engine has
# nothing to honour in them (and SGLang's native sampling parameters would refuse them).
CLIENT_FIELDS: frozenset[str] = frozenset({"user", "metadata", "store", "service_tier"})

ConstraintKind = Literal["json_schema", "json_object", "regex", "choice", "grammar"]
_DEFAULT_PARAM: dict[str, str] = {
    "json_schema": "response_format",
    "json_object": "response_format",
    "regex": "guided_regex",
    "choice": "guided_choice",
    "grammar": "guided_grammar",
}


@dataclass(frozen=True)
class Constraint:
    """What the answer must match. Build it with a constructor; `param` names the request field it came
    from (for error messages), defaulting to the OpenAI / vLLM name of its kind.

    - `json_schema`: `schema` is a JSON Schema (dict); with `strict`, objects that do not say otherwise
      get no properties beyond the listed ones (OpenAI's strict mode).
    - `json_object`: any JSON object.
    - `regex`: `pattern`, the whole answer matches it (Rust regex syntax, close to Python's).
    - `choice`: the answer is exactly one of `choices`.
    - `grammar`: `grammar` in the dialect of the engine's library (Lark for the local engine, which uses
      llguidance; EBNF for SGLang's default xgrammar backend).
    """

    kind: ConstraintKind
    schema: dict[str, Any] | None = None
    strict: bool = True
    pattern: str | None = None
    choices: tuple[str, ...] = ()
    grammar: str | None = None
    param: str = ""

    @classmethod
    def json_schema(
        cls, schema: Mapping[str, Any] | str, *, strict: bool = True, param: str = ""
    ) -> Constraint:
        parsed = _schema_dict(schema, param or _DEFAULT_PARAM["json_schema"])
        return cls("json_schema", schema=parsed, strict=strict, param=param)

    @classmethod
    def json_object(cls, *, param: str = "") -> Constraint:
        return cls("json_object", param=param)

    @classmethod
    def regex(cls, pattern: str, *, param: str = "") -> Constraint:
        return cls("regex", pattern=pattern, param=param)

    @classmethod
    def choice(cls, choices: list[str] | tuple[str, ...], *, param: str = "") -> Constraint:
        return cls("choice", choices=tuple(choices), param=param)

    @classmethod
    def from_grammar(cls, grammar: str, *, param: str = "") -> Constraint:
        return cls("grammar", grammar=grammar, param=param)

    @property
    def field_name(self) -> str:
        """The request field errors about this constraint name."""
        return self.param or _DEFAULT_PARAM[self.kind]

    def check(self) -> None:
        """Raise InvalidRequest for a constraint that is malformed before any library looks at it."""
        where = self.field_name
        if self.kind == "json_schema" and not isinstance(self.schema, dict):
            raise InvalidRequest("a json_schema constraint needs the schema as a JSON object", param=where)
        if self.kind == "regex" and (not isinstance(self.pattern, str) or not self.pattern):
            raise InvalidRequest("a regex constraint needs a non-empty pattern", param=where)
        if self.kind == "grammar" and (not isinstance(self.grammar, str) or not self.grammar.strip()):
            raise InvalidRequest("a grammar constraint needs the grammar text", param=where)
        if self.kind == "choice" and (
            not self.choices or not all(isinstance(c, str) and c for c in self.choices)
        ):
            raise InvalidRequest("a choice constraint needs a list of non-empty strings", param=where)


def _schema_dict(schema: Mapping[str, Any] | str, param: str) -> dict[str, Any]:
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except json.JSONDecodeError as error:
            raise InvalidRequest(f"the JSON schema is not valid JSON: {error}", param=param) from error
    if not isinstance(schema, Mapping):
        raise InvalidRequest("the JSON schema must be a JSON object", param=param)
    return dict(schema)


# --- validation -----------------------------------------------------------------------------------


def validate(sampling: SamplingParams) -> None:
    """Raise InvalidRequest (param = the OpenAI field) for the first value out of its documented range."""
    _check_core(sampling)
    _check_filters(sampling)
    _check_penalties(sampling)
    _check_outputs(sampling)
    if sampling.constraint is not None:
        if not isinstance(sampling.constraint, Constraint):
            raise InvalidRequest("the constraint must be a Constraint", param="response_format")
        sampling.constraint.check()


def _number(value: Any, param: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(f"{param} must be a finite number, got {value!r}", param=param)
    return float(value)


def _integer(value: Any, param: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequest(f"{param} must be an integer, got {value!r}", param=param)
    return value


def _within(value: Any, low: float, high: float, param: str) -> None:
    number = _number(value, param)
    if not low <= number <= high:
        raise InvalidRequest(f"{param} must be between {low:g} and {high:g}, got {value!r}", param=param)


def _check_core(s: SamplingParams) -> None:
    temperature = _number(s.temperature, "temperature")
    if temperature != 0 and not MIN_TEMPERATURE <= temperature <= MAX_TEMPERATURE:
        raise InvalidRequest(
            f"temperature must be 0 (greedy) or between {MIN_TEMPERATURE:g} and {MAX_TEMPERATURE:g}, "
            f"got {s.temperature!r}",
            param="temperature",
        )
    top_p = _number(s.top_p, "top_p")
    if not 0 < top_p <= 1:
        raise InvalidRequest(f"top_p must be in (0, 1], got {s.top_p!r}", param="top_p")
    if _integer(s.max_tokens, "max_tokens") < 0:
        raise InvalidRequest("max_tokens must be >= 0", param="max_tokens")
    if s.seed is not None and not SEED_MIN <= _integer(s.seed, "seed") <= SEED_MAX:
        raise InvalidRequest(f"seed must fit in a signed 64-bit integer, got {s.seed}", param="seed")
    if not isinstance(s.stop, list) or not all(isinstance(x, str) for x in s.stop):
        raise InvalidRequest("stop must be a list of strings", param="stop")


def _check_filters(s: SamplingParams) -> None:
    if s.top_k is not None and _integer(s.top_k, "top_k") < 1 and s.top_k not in (-1, 0):
        raise InvalidRequest(f"top_k must be -1 (off) or >= 1, got {s.top_k}", param="top_k")
    _within(s.min_p, 0.0, 1.0, "min_p")
    if not isinstance(s.logit_bias, dict):
        raise InvalidRequest("logit_bias must map token ids to numbers", param="logit_bias")
    for token, bias in s.logit_bias.items():
        if _integer(token, "logit_bias") < 0:
            raise InvalidRequest(f"logit_bias has a negative token id {token}", param="logit_bias")
        _within(bias, -MAX_LOGIT_BIAS, MAX_LOGIT_BIAS, "logit_bias")
    if not isinstance(s.stop_token_ids, list) or any(
        _integer(t, "stop_token_ids") < 0 for t in s.stop_token_ids
    ):
        raise InvalidRequest("stop_token_ids must be a list of token ids >= 0", param="stop_token_ids")
    if not isinstance(s.ignore_eos, bool):
        raise InvalidRequest("ignore_eos must be true or false", param="ignore_eos")


def _check_penalties(s: SamplingParams) -> None:
    _within(s.frequency_penalty, *PENALTY_RANGE, "frequency_penalty")
    _within(s.presence_penalty, *PENALTY_RANGE, "presence_penalty")
    if _number(s.repetition_penalty, "repetition_penalty") <= 0:
        raise InvalidRequest(
            f"repetition_penalty must be > 0 (1 is off), got {s.repetition_penalty!r}",
            param="repetition_penalty",
        )
    if not 0 <= _integer(s.min_tokens, "min_tokens") <= s.max_tokens:
        raise InvalidRequest(
            f"min_tokens must be between 0 and max_tokens ({s.max_tokens}), got {s.min_tokens}",
            param="min_tokens",
        )


def _check_outputs(s: SamplingParams) -> None:
    if not isinstance(s.logprobs, bool):
        raise InvalidRequest("logprobs must be true or false", param="logprobs")
    if not 0 <= _integer(s.top_logprobs, "top_logprobs") <= MAX_TOP_LOGPROBS:
        raise InvalidRequest(
            f"top_logprobs must be between 0 and {MAX_TOP_LOGPROBS}, got {s.top_logprobs}",
            param="top_logprobs",
        )
    if s.top_logprobs and not s.logprobs:
        raise InvalidRequest("top_logprobs needs logprobs set to true", param="top_logprobs")


# --- n copies of a prompt under one seed -----------------------------------------------------------


def per_copy_seeds(prompts: Sequence[Prompt], sampling: SamplingParams) -> list[SamplingParams]:
    """The sampling of each prompt: with a seed, the i-th copy of the same prompt gets seed + i (vLLM's
    rule for n > 1), so n choices differ but repeat; distinct prompts keep the seed as they would alone.
    Every backend applies it, so n choices under a seed differ wherever they run."""
    if sampling.seed is None:
        return [sampling] * len(prompts)
    copies: dict[Any, int] = {}
    out = []
    for prompt in prompts:
        key = _prompt_key(prompt)
        copy = copies.get(key, 0)
        copies[key] = copy + 1
        out.append(sampling if copy == 0 else replace(sampling, seed=sampling.seed + copy))
    return out


def _prompt_key(prompt: Prompt) -> Any:
    if prompt.embeds is not None:
        return ("embeds", id(prompt.embeds))  # the same tensor object: a copy
    if prompt.token_ids is not None:
        return ("ids", tuple(prompt.token_ids))
    if prompt.messages is not None:
        return ("messages", json.dumps(prompt.messages, sort_keys=True, default=str))
    return ("text", prompt.text)


# --- OpenAI / vLLM names in `extra` -> typed fields -----------------------------------------------

_PLAIN = (
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "min_tokens",
    "stop_token_ids",
    "ignore_eos",
    "top_logprobs",
)


@dataclass
class _Lifted:
    typed: dict[str, Any] = field(default_factory=dict)
    left: dict[str, Any] = field(default_factory=dict)


def lift_openai_fields(sampling: SamplingParams) -> SamplingParams:
    """A copy of `sampling` with the OpenAI/vLLM fields found in `extra` moved into typed fields.

    Handles `logit_bias` (string keys, as JSON has them), `logprobs` (a bool, or the legacy completions
    int meaning top_logprobs), `response_format` (text, json_object, json_schema) and vLLM's
    `guided_json`, `guided_regex`, `guided_choice`, `guided_grammar`. None values mean "not given".
    """
    if not sampling.extra:
        return sampling
    lifted = _Lifted()
    for name, value in sampling.extra.items():
        if value is None and (name in _PLAIN or name in _SPECIAL):
            continue
        if name in _PLAIN:
            lifted.typed[name] = value
        elif name in _SPECIAL:
            _SPECIAL[name](value, lifted)
        else:
            lifted.left[name] = value
    if "top_k" in lifted.typed and lifted.typed["top_k"] in (-1, 0):
        lifted.typed["top_k"] = None
    return replace(sampling, extra=lifted.left, **lifted.typed)


def _lift_logit_bias(value: Any, out: _Lifted) -> None:
    if not isinstance(value, Mapping):
        raise InvalidRequest("logit_bias must map token ids to numbers", param="logit_bias")
    try:
        out.typed["logit_bias"] = {int(k): v for k, v in value.items()}
    except (TypeError, ValueError) as error:
        raise InvalidRequest("logit_bias keys must be token ids", param="logit_bias") from error


def _lift_logprobs(value: Any, out: _Lifted) -> None:
    if isinstance(value, bool):
        out.typed["logprobs"] = value
    elif isinstance(value, int):  # the legacy completions API: logprobs=N means N alternatives
        out.typed["logprobs"] = True
        out.typed.setdefault("top_logprobs", value)
    else:
        raise InvalidRequest("logprobs must be true or false", param="logprobs")


def _lift_response_format(value: Any, out: _Lifted) -> None:
    kind = value.get("type") if isinstance(value, Mapping) else None
    if kind == "text":
        return
    if kind == "json_object":
        out.typed["constraint"] = Constraint.json_object(param="response_format")
        return
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or "schema" not in spec:
            raise InvalidRequest(
                "response_format json_schema needs json_schema.schema", param="response_format"
            )
        strict = spec.get("strict")
        out.typed["constraint"] = Constraint.json_schema(
            spec["schema"], strict=True if strict is None else bool(strict), param="response_format"
        )
        return
    raise InvalidRequest(
        "response_format.type must be text, json_object or json_schema", param="response_format"
    )


def _guided(kind: str) -> Any:
    def lift(value: Any, out: _Lifted) -> None:
        param = f"guided_{kind}"
        if kind == "json":
            out.typed["constraint"] = Constraint.json_schema(value, param=param)
        elif kind == "regex":
            out.typed["constraint"] = Constraint.regex(value, param=param)
        elif kind == "choice":
            if not isinstance(value, list | tuple):
                raise InvalidRequest("guided_choice must be a list of strings", param=param)
            out.typed["constraint"] = Constraint.choice(value, param=param)
        else:
            out.typed["constraint"] = Constraint.from_grammar(value, param=param)

    return lift


_SPECIAL = {
    "logit_bias": _lift_logit_bias,
    "logprobs": _lift_logprobs,
    "response_format": _lift_response_format,
    "guided_json": _guided("json"),
    "guided_regex": _guided("regex"),
    "guided_choice": _guided("choice"),
    "guided_grammar": _guided("grammar"),
}
