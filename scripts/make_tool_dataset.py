"""Write synthetic conversations that teach a model to call the code tool.

Each conversation is a question that needs computation, the assistant's code block, the tool's result
and the assistant's final answer, in the routing format::

    {"messages": [
      {"role": "user", "content": "What is 4821 times 733?"},
      {"role": "assistant", "content": "<|code|>\\nprint(4821 * 733)\\n<|end|>"},
      {"role": "tool", "content": "3533793"},
      {"role": "assistant", "content": "The answer is 3533793."}]}

The families follow the ``tools`` suite's (arithmetic, roots, primes, dates, units, strings, lists),
with their own phrasings. Every operand is drawn at random (numbers of 1 to 12 digits, words from a
list or made of random syllables), so a model cannot memorise answers: to score it must copy the
question's operands into its code, and the tool's result into its answer, which always states the
result verbatim. Every result is what the code prints, run here. The output is deterministic for a
given ``--seed``. A last pass drops any conversation the contamination check flags against
``benchmarks/suites`` (13-gram overlap or an exact prompt), so the suite stays unseen.

    python scripts/make_tool_dataset.py [--out hessgpt/data/tool_calls.jsonl] [--n 3000] [--seed S]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import random
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = 20261201
WORDS = """garden window planet silver journey balloon kitchen mountain orange pencil rhythm lantern harbour
meadow thunder velvet compass blanket whisper cactus library penguin volcano saddle quartz marble tunnel
breeze pickle zephyr apple river stone cloud forest bridge candle dragon engine feather glass honey island
jacket kettle ladder mirror needle oyster pepper rabbit shadow tiger umbrella violin wagon yellow zebra
anchor basket castle desert eagle falcon ginger hammer igloo jungle koala lemon magnet nickel olive parrot
quilt rocket spider turtle valley walnut banana cherry dolphin elephant giraffe horizon insect justice
kingdom lizard monkey number ocean pirate question rainbow sunset tomato unicorn village winter yogurt
the a an and or but if only you we they it is was in on at of to for with from by over under quick brown
fox jumps lazy dog cat stitch time saves nine sew small big red blue green old new fast slow happy sad""".split()
SYLLABLES = ["ba", "ce", "di", "fo", "gu", "ha", "ji", "ko", "lu", "ma", "ne", "pi", "qua", "ro", "si", "ta",
             "ve", "wo", "xa", "zu", "ar", "es", "il", "on", "ur", "str", "ch", "sh", "th", "ss", "pp", "ll"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
ANSWER = "The answer is {r}."


def spoken(d: date) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def random_date(rng: random.Random, lo: int = 1900, hi: int = 2100) -> date:
    return date(rng.randint(lo, hi), 1, 1) + timedelta(days=rng.randint(0, 364))


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def one_of(rng: random.Random, *phrasings: str) -> str:
    return rng.choice(phrasings)


def num(rng: random.Random, lo: int, hi: int) -> int:
    """A number whose digit count is uniform in [lo, hi], so short and long operands are equally common."""
    digits = rng.randint(lo, hi)
    return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10 ** digits - 1)


def decimal(rng: random.Random, lo: int, hi: int, places: int) -> float:
    return round(rng.uniform(lo, hi), rng.randint(1, places))


def word(rng: random.Random) -> str:
    if rng.random() < 0.5:
        return rng.choice(WORDS[:120])
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 6)))


def text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) if rng.random() < 0.7 else word(rng) for _ in range(rng.randint(lo, hi)))


def max_exponent(base: int, digits: int) -> int:
    """The largest exponent that keeps ``base ** exponent`` within ``digits`` digits: a long result
    costs context and training time, and teaches nothing a shorter one does not."""
    exp = 2
    while len(str(base ** (exp + 1))) <= digits:
        exp += 1
    return exp


def power_phrase(rng: random.Random, base: int, exp: int) -> str:
    return one_of(rng, f"{base} to the power of {exp}", f"{base} to the {ordinal(exp)} power", f"{base}**{exp}",
                  f"{base} raised to the {ordinal(exp)} power", f"{base} raised to the power {exp}")


def arithmetic(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["mul", "mul", "add", "sub", "pow", "pow", "div", "mod", "fact", "square", "sum",
                       "percent", "muladd"])
    a, b = num(rng, 2, 10), num(rng, 1, 10)
    if kind == "mul":
        q = one_of(rng, f"What is {a} multiplied by {b}?", f"Compute {a} times {b}.", f"What is {a} * {b}?",
                   f"Calculate the product of {a} and {b}.", f"How much is {a} times {b}?", f"Multiply {a} by {b}.",
                   f"What is {a} times {b}?", f"Compute {a} multiplied by {b}.")
        return q, f"print({a} * {b})"
    if kind == "add":
        c = num(rng, 1, 10)
        q = one_of(rng, f"What is {a} plus {b} plus {c}?", f"How much is {a} + {b} + {c}?",
                   f"Add {a}, {b} and {c}.", f"What is {a} + {b} + {c}?", f"Compute the sum of {a}, {b} and {c}.")
        return q, f"print({a} + {b} + {c})"
    if kind == "sub":
        a = num(rng, 3, 12)
        q = one_of(rng, f"What is {a} minus {b}?", f"Subtract {b} from {a}.", f"How much is {a} - {b}?",
                   f"What is {a} - {b}?", f"Compute {a} minus {b}.")
        return q, f"print({a} - {b})"
    if kind == "pow":
        base = rng.randint(2, 99)
        exp = rng.randint(2, max_exponent(base, 40))
        q = one_of(rng, f"What is {power_phrase(rng, base, exp)}?", f"Calculate {power_phrase(rng, base, exp)}.",
                   f"Compute {power_phrase(rng, base, exp)}.")
        return q, f"print({base} ** {exp})"
    if kind == "div":
        b = num(rng, 1, 6) or 7
        q = one_of(rng, f"What is {a} divided by {b}, rounded down to a whole number?",
                   f"How many whole times does {b} go into {a}?", f"What is {a} divided by {b}, rounded down?",
                   f"Divide {a} by {b} and round down to a whole number.")
        return q, f"print({a} // {b})"
    if kind == "mod":
        base, exp, m = rng.randint(2, 99), rng.randint(2, 60), rng.randint(2, 9999)
        q = one_of(rng, f"What is the remainder when {power_phrase(rng, base, exp)} is divided by {m}?",
                   f"What is {base}**{exp} modulo {m}?", f"What is {power_phrase(rng, base, exp)} modulo {m}?")
        return q, f"print({base} ** {exp} % {m})"
    if kind == "fact":
        n = rng.randint(2, 34)
        q = one_of(rng, f"What is {n} factorial?", f"Compute {n}!.", f"What is the factorial of {n}?",
                   f"Calculate {n} factorial.")
        return q, f"import math\nprint(math.factorial({n}))"
    if kind == "square":
        if rng.random() < 0.3:
            q = one_of(rng, f"What is {a} cubed?", f"Compute the cube of {a}.")
            return q, f"print({a} ** 3)"
        q = one_of(rng, f"What is {a} squared?", f"Compute the square of {a}.", f"Calculate {a} squared.")
        return q, f"print({a} ** 2)"
    if kind == "sum":
        n = num(rng, 2, 6)
        q = one_of(rng, f"What is the sum of all whole numbers from 1 to {n}?", f"Add up every integer from 1 to {n}.",
                   f"What is the sum of the integers from 1 to {n}?")
        return q, f"print(sum(range(1, {n} + 1)))"
    if kind == "muladd":
        c = num(rng, 1, 8)
        op, verb = rng.choice([("-", "subtract"), ("+", "add")])
        q = one_of(rng, f"Multiply {a} by {b} and then {verb} {c}.", f"Multiply {a} by {b}, then {verb} {c}.",
                   f"What is {a} times {b}, {verb} {c}?")
        return q, f"print({a} * {b} {op} {c})"
    p = rng.randint(1, 99)
    q = one_of(rng, f"What is {p} percent of {a}?", f"Compute {p}% of {a}.", f"What is {p}% of {a}?")
    return q, f"print({p} * {a} / 100)"


def roots(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["isqrt", "sqrt", "cbrt", "nth", "log", "growth", "ipow"])
    if kind == "isqrt":
        r = num(rng, 1, 6)
        q = one_of(rng, f"What is the square root of {r * r}?", f"Find the square root of {r * r}.")
        return q, f"import math\nprint(math.isqrt({r * r}))"
    if kind == "sqrt":
        n, d = num(rng, 1, 7), rng.randint(2, 8)
        q = one_of(rng, f"What is the square root of {n}, rounded to {d} decimal places?",
                   f"What is the square root of {n}, to {d} decimal places?",
                   f"Give the square root of {n} to {d} decimal places.")
        return q, f"print(round({n} ** 0.5, {d}))"
    if kind == "cbrt":
        r = num(rng, 1, 4)
        q = one_of(rng, f"What is the cube root of {r ** 3}?", f"Find the cube root of {r ** 3}.")
        return q, f"print(round({r ** 3} ** (1 / 3)))"
    if kind == "nth":
        k, r = rng.randint(4, 9), rng.randint(2, 99)
        q = one_of(rng, f"What is the {ordinal(k)} root of {r ** k}?", f"Find the {ordinal(k)} root of {r ** k}.")
        return q, f"print(round({r ** k} ** (1 / {k})))"
    if kind == "log":
        n, d = num(rng, 1, 7) or 1, rng.randint(2, 6)
        q = one_of(rng, f"What is the natural logarithm of {n}, to {d} decimal places?",
                   f"What is ln({n}), rounded to {d} decimal places?")
        return q, f"import math\nprint(round(math.log({n}), {d}))"
    if kind == "growth":
        rate, years, d = rng.randint(101, 130) / 100, rng.randint(2, 60), rng.randint(2, 6)
        q = f"What is {rate} to the power of {years}, rounded to {d} decimal places?"
        return q, f"print(round({rate} ** {years}, {d}))"
    if rng.random() < 0.5:
        base, exp = rng.randint(2, 99), rng.randint(2, 30)
        q = one_of(rng, f"What is the integer square root (rounded down) of {power_phrase(rng, base, exp)}?",
                   f"What is the square root of {power_phrase(rng, base, exp)}, rounded down?")
        return q, f"import math\nprint(math.isqrt({base} ** {exp}))"
    n = num(rng, 2, 12)
    q = one_of(rng, f"What is the integer square root (rounded down) of {n}?",
               f"What is the square root of {n}, rounded down to a whole number?")
    return q, f"import math\nprint(math.isqrt({n}))"


THINGS = ["items", "numbers", "cards", "people", "books", "balls", "players", "colours", "letters", "objects"]


def primes(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["nth", "count", "lpf", "sum", "next", "gcd", "lcm", "divisors", "fib", "comb", "digits"])
    if kind == "nth":
        k = num(rng, 1, 5) or 1
        q = one_of(rng, f"What is the {ordinal(k)} prime number?", f"Find the {ordinal(k)} prime.",
                   f"Which number is the {ordinal(k)} prime?")
        return q, f"import sympy\nprint(sympy.prime({k}))"
    if kind == "count":
        n = num(rng, 2, 6)
        q = one_of(rng, f"How many prime numbers are there below {n}?", f"Count the primes smaller than {n}.",
                   f"How many primes are less than {n}?")
        return q, f"import sympy\nprint(sympy.primepi({n} - 1))"
    if kind == "lpf":
        n = num(rng, 2, 12)
        q = one_of(rng, f"What is the largest prime factor of {n}?", f"Find the biggest prime factor of {n}.",
                   f"What is the greatest prime factor of {n}?")
        return q, f"import sympy\nprint(max(sympy.primefactors({n})))"
    if kind == "sum":
        n = num(rng, 2, 6)
        q = one_of(rng, f"What is the sum of all prime numbers below {n}?", f"Add up the primes smaller than {n}.",
                   f"What is the sum of the primes less than {n}?")
        return q, f"import sympy\nprint(sum(sympy.primerange({n})))"
    if kind == "next":
        n = num(rng, 1, 9)
        q = one_of(rng, f"What is the smallest prime number greater than {n}?", f"Find the first prime after {n}.",
                   f"What is the next prime after {n}?")
        return q, f"import sympy\nprint(sympy.nextprime({n}))"
    if kind == "gcd":
        a, b = num(rng, 1, 8) or 1, num(rng, 1, 8) or 1
        q = one_of(rng, f"What is the greatest common divisor of {a} and {b}?", f"Find the GCD of {a} and {b}.",
                   f"What is the GCD of {a} and {b}?")
        return q, f"import math\nprint(math.gcd({a}, {b}))"
    if kind == "lcm":
        a, b, c = (rng.randint(2, 9999) for _ in range(3))
        if rng.random() < 0.4:
            q = one_of(rng, f"What is the least common multiple of {a} and {b}?", f"Find the LCM of {a} and {b}.")
            return q, f"import math\nprint(math.lcm({a}, {b}))"
        q = one_of(rng, f"What is the least common multiple of {a}, {b} and {c}?", f"Find the LCM of {a}, {b} and {c}.")
        return q, f"import math\nprint(math.lcm({a}, {b}, {c}))"
    if kind == "divisors":
        n = num(rng, 1, 8) or 1
        q = one_of(rng, f"How many divisors does {n} have?", f"Count the divisors of {n}.",
                   f"How many positive divisors does {n} have?")
        return q, f"import sympy\nprint(sympy.divisor_count({n}))"
    if kind == "fib":
        n = rng.randint(1, 190)
        q = one_of(rng, f"What is the {ordinal(n)} Fibonacci number (with F(1) = F(2) = 1)?",
                   f"Compute the Fibonacci number F({n}), where F(1) = F(2) = 1.",
                   f"What is the {ordinal(n)} Fibonacci number?")
        return q, f"import sympy\nprint(sympy.fibonacci({n}))"
    if kind == "comb":
        n = rng.randint(2, 200)
        k = rng.randint(1, min(20, n))
        thing = rng.choice(THINGS)
        q = one_of(rng, f"In how many ways can you choose {k} {thing} out of {n}?", f"What is {n} choose {k}?",
                   f"How many ways are there to pick {k} {thing} from {n}?")
        return q, f"import math\nprint(math.comb({n}, {k}))"
    base, exp = rng.randint(2, 99), rng.randint(2, 300)
    q = one_of(rng, f"What is the sum of the digits of {power_phrase(rng, base, exp)}?",
               f"Add up the digits of {base}**{exp}.")
    return q, f"print(sum(int(c) for c in str({base} ** {exp})))"


def dates(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["between", "between", "weekday", "weekday", "after", "yday", "weeks", "leap"])
    d1 = random_date(rng)
    if kind == "between":
        d2 = d1 + timedelta(days=rng.randint(1, 60000))
        q = one_of(rng, f"How many days are there between {spoken(d1)} and {spoken(d2)}?",
                   f"How many days are there from {spoken(d1)} to {spoken(d2)}?",
                   f"How many days passed between {spoken(d1)} and {spoken(d2)}?")
        return q, (f"from datetime import date\nprint((date({d2.year}, {d2.month}, {d2.day}) - "
                   f"date({d1.year}, {d1.month}, {d1.day})).days)")
    if kind == "weekday":
        q = one_of(rng, f"On which day of the week did {spoken(d1)} fall?", f"What day of the week was {spoken(d1)}?",
                   f"On which day of the week will {spoken(d1)} fall?", f"What day of the week is {spoken(d1)}?")
        return q, f"from datetime import date\nprint(date({d1.year}, {d1.month}, {d1.day}).strftime('%A'))"
    if kind == "after":
        n = num(rng, 1, 5)
        word_ = rng.choice(["after", "before"])
        sign = "+" if word_ == "after" else "-"
        q = one_of(rng, f"What date is {n} days {word_} {spoken(d1)}? Answer in YYYY-MM-DD format.",
                   f"Which date is {n} days {word_} {spoken(d1)}? Give it as YYYY-MM-DD.")
        return q, (f"from datetime import date, timedelta\nprint(date({d1.year}, {d1.month}, {d1.day}) {sign} "
                   f"timedelta(days={n}))")
    if kind == "yday":
        q = one_of(rng, f"What day of the year (1 to 366) is {spoken(d1)}?",
                   f"Which day of the year is {spoken(d1)}?")
        return q, f"from datetime import date\nprint(date({d1.year}, {d1.month}, {d1.day}).timetuple().tm_yday)"
    if kind == "weeks":
        n = num(rng, 2, 6)
        q = one_of(rng, f"How many full weeks are there in {n} days?",
                   f"How many weeks and leftover days are in {n} days? Give the number of full weeks.",
                   f"How many complete weeks fit in {n} days?")
        return q, f"print({n} // 7)"
    y1 = rng.randint(1582, 2400)
    y2 = y1 + rng.randint(1, 500)
    q = one_of(rng, f"How many leap years are there from {y1} to {y2} inclusive?",
               f"Count the leap years between {y1} and {y2}, both included.")
    return q, f"import calendar\nprint(calendar.leapdays({y1}, {y2} + 1))"


MOVERS = [("A train", "moves"), ("A car", "drives"), ("A plane", "flies"), ("A cyclist", "rides"),
          ("A runner", "runs"), ("A boat", "sails"), ("A bus", "travels")]
BYTES = [("kilobyte", 10), ("megabyte", 20), ("gigabyte", 30), ("terabyte", 40)]


def units(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["miles", "f2c", "ftin", "kg", "seconds", "kmh", "c2k", "ha", "bytes"])
    if kind == "miles":
        n = rng.choice([num(rng, 1, 5), decimal(rng, 0, 999, 2)])
        return f"How many kilometres are {n} miles? (1 mile = 1.609344 km)", f"print({n} * 1.609344)"
    if kind == "f2c":
        f = rng.choice([rng.randint(-100, 1000), decimal(rng, -100, 1000, 1)])
        return (one_of(rng, f"Convert {f} degrees Fahrenheit to Celsius.", f"What is {f} degrees Fahrenheit in Celsius?"),
                f"print(round(({f} - 32) * 5 / 9, 2))")
    if kind == "ftin":
        ft, inch = rng.randint(0, 12), rng.randint(0, 11)
        return (f"How many centimetres are {ft} feet {inch} inches? (1 inch = 2.54 cm)",
                f"print(round(({ft} * 12 + {inch}) * 2.54, 2))")
    if kind == "kg":
        kg = rng.choice([rng.randint(1, 999), decimal(rng, 0, 999, 2)])
        return (f"How many pounds are {kg} kilograms, to 2 decimal places? (1 kg = 2.20462 lb)",
                f"print(round({kg} * 2.20462, 2))")
    if kind == "seconds":
        n, unit, factor = num(rng, 1, 4) or 1, *rng.choice([("days", "24 * 3600"), ("weeks", "7 * 24 * 3600"),
                                                              ("hours", "3600"), ("minutes", "60")])
        return (one_of(rng, f"How many seconds are there in {n} {unit}?", f"How many seconds are in {n} {unit}?"),
                f"print({n} * {factor})")
    if kind == "kmh":
        v = rng.choice([rng.randint(1, 1000), decimal(rng, 1, 999, 1)])
        mover, verb = rng.choice(MOVERS)
        return f"{mover} {verb} at {v} km/h. What is its speed in metres per second?", f"print(round({v} / 3.6, 2))"
    if kind == "c2k":
        c = rng.choice([rng.randint(-273, 3000), decimal(rng, -273, 3000, 2)])
        return (one_of(rng, f"Convert {c} degrees Celsius to Kelvin.", f"What is {c} degrees Celsius in Kelvin?"),
                f"print(round({c} + 273.15, 2))")
    if kind == "ha":
        h = rng.choice([rng.randint(1, 999), decimal(rng, 0, 999, 2)])
        return f"How many square metres is {h} hectares?", f"print({h} * 10000)"
    n = num(rng, 1, 4) or 1
    (big, k), (small, j) = sorted(rng.sample(BYTES, 2), key=lambda u: -u[1])
    q = one_of(rng, f"Convert {n} {big}s of 2 to the {ordinal(k)} bytes into {small}s of {2 ** j} bytes.",
               f"How many {small}s of {2 ** j} bytes are in {n} {big}s of 2 to the {ordinal(k)} bytes?")
    return q, f"print({n} * 2 ** {k} // {2 ** j})"


def strings(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["reverse", "count", "length", "vowels", "words", "ord", "sort", "distinct", "bin", "hex"])
    w = word(rng) + (word(rng) if rng.random() < 0.5 else "")
    sentence = text(rng, 2, 12)
    if kind == "reverse":
        return (one_of(rng, f"Reverse the string '{w}'.", f"What is '{w}' spelled backwards?",
                       f"Write the string '{w}' backwards."), f"print('{w}'[::-1])")
    if kind == "count":
        s = rng.choice([w, sentence])
        letter = rng.choice(sorted(set(s.replace(" ", ""))))
        return (one_of(rng, f"How many times does the letter {letter} appear in '{s}'?",
                       f"Count the letter {letter} in '{s}'."), f"print('{s}'.count('{letter}'))")
    if kind == "length":
        s = rng.choice([w, sentence])
        return (one_of(rng, f"How many characters long is the string '{s}'?", f"What is the length of the string '{s}'?"),
                f"print(len('{s}'))")
    if kind == "vowels":
        s = rng.choice([w, sentence])
        return (one_of(rng, f"How many vowels (a, e, i, o, u) are in '{s}'?", f"Count the vowels in '{s}'."),
                f"print(sum(c in 'aeiou' for c in '{s}'))")
    if kind == "words":
        return (one_of(rng, f"How many words are in the sentence '{sentence}'?", f"Count the words in '{sentence}'."),
                f"print(len('{sentence}'.split()))")
    if kind == "ord":
        c = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return (one_of(rng, f"What is the Unicode code point (decimal) of the character '{c}'?",
                       f"What is the ASCII code of '{c}'?"), f"print(ord('{c}'))")
    if kind == "sort":
        return (one_of(rng, f"Sort the letters of the word '{w}' alphabetically.",
                       f"Put the letters of '{w}' in alphabetical order."), f"print(''.join(sorted('{w}')))")
    if kind == "distinct":
        return (one_of(rng, f"How many distinct letters are in the word '{w}'?",
                       f"How many different letters does '{w}' have?"), f"print(len(set('{w}')))")
    n = num(rng, 1, 7)
    if kind == "bin":
        return one_of(rng, f"Write the number {n} in binary.", f"What is {n} in binary?"), f"print(bin({n})[2:])"
    return one_of(rng, f"What is {n} in hexadecimal?", f"Write {n} in hexadecimal."), f"print(format({n}, 'x'))"


def lists(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["sum", "median", "mean", "sort", "product", "range", "pstdev", "multiples"])
    values = [num(rng, 1, 3) for _ in range(rng.randint(3, 10))]
    shown = "[" + ", ".join(map(str, values)) + "]"
    # Some questions list the numbers in prose ("4, 8 and 15"): the code writes them as a list.
    prose = ", ".join(map(str, values[:-1])) + f" and {values[-1]}"
    spelled = rng.choice([shown, shown, prose])
    if kind == "sum":
        return (one_of(rng, f"What is the sum of the list {shown}?", f"What is the sum of {spelled}?",
                       f"Add up {spelled}."), f"print(sum({shown}))")
    if kind == "median":
        return f"What is the median of {spelled}?", f"import statistics\nprint(statistics.median({shown}))"
    if kind == "mean":
        return (one_of(rng, f"What is the mean of {spelled}?", f"What is the average of {spelled}?"),
                f"import statistics\nprint(statistics.mean({shown}))")
    if kind == "sort":
        order, flag = rng.choice([("ascending", ""), ("ascending", ""), ("descending", ", reverse=True")])
        return f"Sort {shown} in {order} order.", f"print(', '.join(map(str, sorted({shown}{flag}))))"
    if kind == "product":
        return (one_of(rng, f"What is the product of all numbers in {shown}?", f"What is the product of {spelled}?"),
                f"import math\nprint(math.prod({shown}))")
    if kind == "range":
        return (one_of(rng, f"What is the largest difference between two numbers in {shown}?",
                       f"What is the range of {spelled}?"), f"print(max({shown}) - min({shown}))")
    if kind == "pstdev":
        if rng.random() < 0.5:
            return (f"What is the population standard deviation of {shown}?",
                    f"import statistics\nprint(statistics.pstdev({shown}))")
        d = rng.randint(2, 6)
        return (f"What is the population standard deviation of {shown}, to {d} decimal places?",
                f"import statistics\nprint(round(statistics.pstdev({shown}), {d}))")
    n = num(rng, 2, 5)
    if rng.random() < 0.5:
        a, b = rng.randint(2, 13), rng.randint(2, 13)
        return (f"How many numbers between 1 and {n} are divisible by both {a} and {b}?",
                f"import math\nprint({n} // math.lcm({a}, {b}))")
    k, parity, rest = rng.randint(2, 19), *rng.choice([("even", 0), ("odd", 1)])
    return (f"How many {parity} numbers are there between 1 and {n} that are divisible by {k}?",
            f"print(sum(1 for x in range(1, {n} + 1) if x % 2 == {rest} and x % {k} == 0))")


FAMILIES = [arithmetic, arithmetic, roots, primes, primes, dates, units, strings, lists]


def run_code(code: str) -> str:
    """What the code prints (our own templates: run in-process)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<template>", "exec"), {"__name__": "__main__"})
    return out.getvalue().strip()


def make(n: int, seed: int = SEED) -> list[dict]:
    rng = random.Random(seed)
    records, seen = [], set()
    while len(records) < n:
        question, code = rng.choice(FAMILIES)(rng)
        if question in seen:
            continue
        seen.add(question)
        result = run_code(code)
        records.append({"messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": f"<|code|>\n{code}\n<|end|>"},
            {"role": "tool", "content": result},
            {"role": "assistant", "content": ANSWER.format(r=result)},
        ]})
    return records


def without_contamination(records: list[dict], against: Path) -> tuple[list[dict], int]:
    from hessgpt.contamination import ContaminationIndex
    from hessgpt.data import Example

    index = ContaminationIndex.from_folder(against)
    kept = [r for i, r in enumerate(records) if not index.check_example(i, Example(messages=r["messages"]))]
    return kept, len(records) - len(kept)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "hessgpt" / "data" / "tool_calls.jsonl")
    parser.add_argument("--n", type=int, default=3000, help="conversations to generate (before the check)")
    parser.add_argument("--seed", type=int, default=SEED, help="every random choice flows from it")
    parser.add_argument("--against", type=Path, default=ROOT / "benchmarks" / "suites")
    args = parser.parse_args()
    records, dropped = without_contamination(make(args.n, args.seed), args.against)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print(f"{args.out}: {len(records)} conversations ({dropped} dropped by the contamination check)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
