"""Field rules shared by HTML forms, the JSON API and the OpenAPI document.

A rule is a named check: it returns an error message (in the seed's wording) or None,
and carries the JSON-schema keywords that describe it.
"""

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

#: The bound of an integer field that names none: what every database stores as INTEGER.
MAX_INT = 2**31 - 1
#: The largest id a URL may name; larger ones match no route. Ids are INTEGER columns: 32 bits
#: on PostgreSQL, where a larger number in a query is an error (SQLite's reach 64 bits, but
#: only after two billion rows).
MAX_ID = MAX_INT
_WHOLE = re.compile(r"[+-]?[0-9]{1,1000}")  # longer: not a number anyone means


@dataclass(frozen=True)
class Rule:
    name: str
    check: Callable[[str, object], str | None]  # (label, value) -> message or None
    schema: dict = field(default_factory=dict)

    def __call__(self, label: str, value) -> str | None:
        return self.check(label, value)


class Invalid(Exception):
    """Raised with {field: (rule name, message)} when data breaks a rule."""

    def __init__(self, errors: dict[str, tuple[str, str]]):
        super().__init__("; ".join(msg for _, msg in errors.values()))
        self.errors = errors

    def messages(self) -> dict[str, str]:
        return {name: msg for name, (_, msg) in self.errors.items()}

    def as_json(self) -> dict:
        return {"error": "invalid", "message": str(self),
                "fields": [{"field": f, "rule": r, "message": m}
                           for f, (r, m) in self.errors.items()]}


class Conflict(Invalid):
    """A change the current state refuses (in use, busy): 409, where Invalid is 422."""

    @classmethod
    def because(cls, rule: str, message: str) -> "Conflict":
        return cls({"": (rule, message)})

    def rule(self) -> str:
        return next(iter(self.errors.values()))[0]


def gather(errors: dict, check: Callable, *args):
    """`check(*args)` (a Schema's validate, say), or None with its broken rules added to
    `errors`: a form of several parts reports every part's errors at once."""
    try:
        return check(*args)
    except Invalid as exc:
        errors.update(exc.errors)
        return None


def length(lo: int, hi: int) -> Rule:
    def check(label, v):
        if not lo <= len(v) <= hi:
            return f"{label} must be {lo} to {hi} characters" if lo > 1 else \
                f"{label} must be at most {hi} characters"
    return Rule("length", check, {"minLength": lo, "maxLength": hi})


def max_length(hi: int) -> Rule:
    def check(label, v):
        if len(v) > hi:
            return f"{label} must be at most {hi} characters"
    return Rule("max_length", check, {"maxLength": hi})


def no_chars(chars: str, words: str) -> Rule:
    """Refuse any of `chars`; `words` names them for the message."""
    def check(label, v):
        if any(c in chars for c in v):
            return f"{label} cannot contain {words}"
    return Rule("forbidden_characters", check)


def no_nul() -> Rule:
    """No NUL character: PostgreSQL's text cannot hold one (SQLite's could), so no store
    takes one. Every string field has this rule."""
    def check(label, v):
        if "\x00" in v:
            return f"{label} cannot contain the NUL character (U+0000)"
    return Rule("no_nul", check)


def only(pattern: str, words: str, name: str = "allowed_characters") -> Rule:
    """Allow only characters matching the regex class `pattern`."""
    rx = re.compile(f"^{pattern}*$")

    def check(label, v):
        if not rx.match(v):
            return f"{label} must contain only {words}"
    return Rule(name, check, {"pattern": f"^{pattern}*$"})


_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def is_hostname(v: str) -> bool:
    v = v.rstrip(".")
    return 0 < len(v) <= 253 and all(_LABEL.match(p) for p in v.split(".")) \
        and not v.replace(".", "").isdigit()


def is_ip(v: str) -> bool:
    try:
        ipaddress.ip_address(v)
    except ValueError:
        return False
    return True


def host_or_ip() -> Rule:
    def check(label, v):
        if not (is_ip(v) or is_hostname(v)):
            return f"{label} must be an IP address or a hostname"
    return Rule("host_or_ip", check, {"maxLength": 253})


_EMAIL = r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+"


def email() -> Rule:
    """An e-mail address as mail systems write it: a name, one @, a domain with a dot, no
    spaces. Nothing is looked up."""
    rx = re.compile(f"^{_EMAIL}$")

    def check(label, v):
        if not rx.match(v):
            return f"{label} must be an e-mail address such as ann@example.com"
    return Rule("email", check, {"pattern": f"^$|^{_EMAIL}$"})


def dns_name() -> Rule:
    def check(label, v):
        if is_ip(v) or not is_hostname(v) or v.endswith("."):
            return f"{label} must be a DNS name (letters, digits, dashes and dots, e.g. " \
                   "im.example.com)"
    return Rule("dns_name", check, {"maxLength": 253})


def whole(raw) -> int | None:
    """`raw` as an int: an int, an integral float or ASCII digits (a JSON true is not 1)."""
    if type(raw) is int:
        return raw
    if type(raw) is float:
        return int(raw) if raw.is_integer() else None  # inf and nan are not integers
    if isinstance(raw, str) and _WHOLE.fullmatch(raw := raw.strip()):
        return int(raw)
    return None


def id_of(raw) -> int | None:
    """`raw` as an id a URL or form names (0 to MAX_ID), or None: `args.get(k, type=id_of)`."""
    value = whole(raw)
    return value if value is not None and 0 <= value <= MAX_ID else None


def int_range(lo: int, hi: int) -> Rule:
    def check(label, v):
        if not lo <= v <= hi:
            return f"{label} must be {lo} to {hi}"
    return Rule("range", check, {"minimum": lo, "maximum": hi})


def one_of(choices) -> Rule:
    choices = list(choices)

    def check(label, v):
        if v not in choices:
            return f"{label} must be one of: {', '.join(map(str, choices))}"
    return Rule("one_of", check, {"enum": choices})


_NO_NUL = no_nul()


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    rules: tuple[Rule, ...] = ()
    required: bool = True
    type: str = "string"  # string, integer, boolean
    secret: bool = False  # never rendered back or returned
    help: str = ""

    def __post_init__(self):
        if self.type == "integer" and not any(r.name == "range" for r in self.rules):
            object.__setattr__(self, "rules", (int_range(0, MAX_INT), *self.rules))
        if self.type == "string" and not any(r.name == "no_nul" for r in self.rules):
            object.__setattr__(self, "rules", (*self.rules, _NO_NUL))

    def clean(self, raw):
        """Return the typed value, or raise Invalid naming this field."""
        if type(raw) is str and self.type == "string":  # most values: a bulk import's cells
            value = raw.strip()
            if value:
                for rule in self.rules:
                    if msg := rule.check(self.label, value):
                        raise Invalid({self.name: (rule.name, msg)})
                return value
        if self.type == "boolean":
            return raw in (True, "on", "true", "1", 1)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if self.required:
                raise Invalid({self.name: ("required", f"{self.label} is required")})
            return None if self.type == "integer" else ""
        if self.type == "integer":
            value = whole(raw)
            if value is None:
                raise Invalid({self.name: ("integer", f"{self.label} must be a whole number")})
        elif not isinstance(raw, str):
            raise Invalid({self.name: ("string", f"{self.label} must be text")})
        else:
            value = raw.strip()
        for rule in self.rules:
            msg = rule.check(self.label, value)
            if msg:
                raise Invalid({self.name: (rule.name, msg)})
        return value

    @property
    def choices(self) -> list | None:
        """The values a one_of rule allows, or None."""
        return next((r.schema["enum"] for r in self.rules if "enum" in r.schema), None)

    def attrs(self) -> dict:
        """The HTML input attributes that state this field's rules (see macros.input)."""
        kinds = {"integer": "number", "boolean": "checkbox"}
        out = {"type": "password" if self.secret else kinds.get(self.type, "text")}
        for rule in self.rules:
            keys = {"maxLength": "maxlength", "minimum": "min", "maximum": "max"}
            out.update({keys[k]: v for k, v in rule.schema.items() if k in keys})
        if self.required and self.type != "boolean":
            out["aria-required"] = "true"
        return out

    def json_schema(self) -> dict:
        out = {"type": self.type, "title": self.label}
        if self.help:
            out["description"] = self.help
        for rule in self.rules:
            out.update(rule.schema)
        if self.secret:
            out["writeOnly"] = True
        return out


class Schema:
    """An ordered set of fields validated together: every error is reported at once."""

    def __init__(self, name: str, *fields: Field, partial: bool = False):
        self.name = name
        self.fields = {f.name: f for f in fields}
        self.partial = partial

    def optional(self) -> "Schema":
        """This schema for a partial update: only the fields given are checked."""
        return Schema(f"{self.name}Update", *self.fields.values(), partial=True)

    def validate(self, data: Mapping | None, partial: bool | None = None) -> dict:
        partial = self.partial if partial is None else partial
        if data is None or not isinstance(data, Mapping):
            raise Invalid({"": ("object", "The request body must be a JSON object")})
        out, errors = {}, {}
        for f in self.fields.values():
            if partial and f.name not in data:
                continue
            try:
                out[f.name] = f.clean(data.get(f.name))
            except Invalid as exc:
                errors.update(exc.errors)
        if errors:
            raise Invalid(errors)
        return out

    def json_schema(self) -> dict:
        return {
            "type": "object",
            "properties": {n: f.json_schema() for n, f in self.fields.items()},
            "required": [] if self.partial else
            [n for n, f in self.fields.items() if f.required and f.type != "boolean"],
        }


#: Seed 003: the only characters a synchronized value may hold (the XML 1.0 character ranges).
_BAD_CHAR = re.compile("[^\x09\x0a\x0d\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def bad_char(value: str) -> str | None:
    """The first character outside the seed's valid ranges, as U+XXXX, or None."""
    m = _BAD_CHAR.search(value)
    return f"U+{ord(m.group()):04X}" if m else None


def valid_characters() -> Rule:
    def check(label, v):
        if _BAD_CHAR.search(v):
            return f"{label} contains the invalid character {bad_char(v)}"
    return Rule("valid_characters", check)


# --- The seed's rules, named after the rule -------------------------------------------

#: Enterprise ID (seed 000): 4-32 characters; alphanumerics and dashes; no spaces, | , ; :
ENTERPRISE_ID_RULES = (
    length(4, 32),
    no_chars(" |,;:", "spaces, vertical bars, commas, semicolons, or colons ( | , ; : )"),
    only("[A-Za-z0-9-]", "letters, digits and dashes", name="alphanumeric_and_dashes"),
)
