"""Numbers written in words, read as digits: 'a dozen' and 'twelve' answer '12' as well as '12' does."""

from __future__ import annotations

from collections.abc import Sequence

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
         "ninety": 90}
_SCALES = {"hundred": 100, "thousand": 1000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_SCALES) | {"dozen", "and", "a"}


def _parse_number(tokens: Sequence[str]) -> tuple[int, int] | None:
    """(value, tokens used) of a number written in words at the start of ``tokens``."""
    total, current, used, seen = 0, 0, 0, False
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t in _UNITS:
            current += _UNITS[t]
        elif t in _TENS:
            current += _TENS[t]
        elif t == "dozen":
            current = (current or 1) * 12
        elif t == "hundred" and seen:
            current = (current or 1) * 100
        elif t in _SCALES and seen:
            total += (current or 1) * _SCALES[t]
            current = 0
        elif t == "and" and seen and i + 1 < len(tokens) and tokens[i + 1] in (_UNITS.keys() | _TENS.keys()):
            pass
        elif t == "a" and not seen and i + 1 < len(tokens) and tokens[i + 1] in ("dozen", "hundred", "thousand",
                                                                               "million", "billion"):
            current = 1
            i += 1
            seen = True
            used = i
            continue
        else:
            break
        seen = True
        i += 1
        used = i
    if not seen:
        return None
    return total + current, used


def numbers_as_digits(tokens: Sequence[str]) -> list[str]:
    """Folded word tokens with numbers written in words replaced by their digits:
    ['a', 'dozen', 'eggs'] -> ['12', 'eggs'], ['twenty', 'one'] -> ['21']."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] in _NUMBER_WORDS and tokens[i] != "and":
            parsed = _parse_number(tokens[i:])
            if parsed is not None and not (tokens[i] == "a" and parsed[1] == 1):
                value, used = parsed
                if tokens[i] == "one" and used == 1:
                    out.append(tokens[i])  # 'one' is more often a pronoun than a number; keep both readings
                    out.append("1")
                else:
                    out.append(str(value))
                i += used
                continue
        out.append(tokens[i])
        i += 1
    return out
