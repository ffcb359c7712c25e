"""Rule 6: what becomes of an account's numbers that disappear from the PBX node."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class NumberState:
    """A number an account has now: where it came from, and whether a status uses it."""

    number: str
    origin: str  # "pbx" or "manual"
    referenced_by_status: bool = False


@dataclass(frozen=True)
class NumberDecision:
    """Whether a number stays on the account, and why."""

    number: str
    keep: bool
    reason: str


def decide_numbers(current: Iterable[NumberState], from_pbx: set[str]) -> list[NumberDecision]:
    """Rule 6, with reasons: a number gone from the node stays while it was added manually or
    a dynamic status still points to it (MiVoice Business and MiVoice Office 250 alike)."""
    out = []
    for state in current:
        if state.origin not in ("pbx", "manual"):
            raise ValueError(f"origin of {state.number} must be 'pbx' or 'manual', "
                             f"not {state.origin!r}")
        reasons = []
        if state.number in from_pbx:
            reasons.append("it is on the PBX")
        if state.origin == "manual":
            reasons.append("the administrator added it manually")
        if state.referenced_by_status:
            reasons.append("a dynamic status still points to it (Make Call from)")
        if reasons:
            out.append(NumberDecision(state.number, True, "; ".join(reasons)))
        else:
            out.append(NumberDecision(state.number, False, (
                "it is no longer on the PBX, was not added manually and no dynamic status "
                "points to it")))
    return out


def numbers_to_keep(current: list[NumberState], from_pbx: set[str]) -> tuple[list[str],
                                                                           list[str]]:
    """Rule 6: (kept, removed) among an account's current numbers; decide_numbers says why."""
    decisions = decide_numbers(current, from_pbx)
    return ([d.number for d in decisions if d.keep], [d.number for d in decisions if not d.keep])
