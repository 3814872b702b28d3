"""Write hessgpt/data/tool_calls.jsonl: synthetic conversations that teach a model to call the code tool.

Each conversation is a question that needs computation, the assistant's code block, the tool's result
and the assistant's final answer, in the routing format::

    {"messages": [
      {"role": "user", "content": "What is 4821 times 733?"},
      {"role": "assistant", "content": "<|code|>\\nprint(4821 * 733)\\n<|end|>"},
      {"role": "tool", "content": "3533793"},
      {"role": "assistant", "content": "The answer is 3533793."}]}

The families follow the ``tools`` suite's (arithmetic, roots, primes, dates, units, strings, lists), with
their own phrasings and random operands; every result is what the code prints, run here. The output
is deterministic (fixed seed). A last pass drops any conversation the contamination check flags
against ``benchmarks/suites`` (13-gram overlap or an exact prompt), so the suite stays unseen.

    python scripts/make_tool_dataset.py [--out hessgpt/data/tool_calls.jsonl] [--n 3000]
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
WORDS = ["garden", "window", "planet", "silver", "journey", "balloon", "kitchen", "mountain", "orange", "pencil",
         "rhythm", "lantern", "harbour", "meadow", "thunder", "velvet", "compass", "blanket", "whisper", "cactus",
         "library", "penguin", "volcano", "saddle", "quartz", "marble", "tunnel", "breeze", "pickle", "zephyr"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
ANSWERS = ["The answer is {r}.", "The result is {r}.", "It is {r}.", "The answer is {r}."]


def spoken(d: date) -> str:
    return f"{d.day} {MONTHS[d.month - 1]} {d.year}"


def random_date(rng: random.Random, lo: int = 1950, hi: int = 2090) -> date:
    return date(rng.randint(lo, hi), 1, 1) + timedelta(days=rng.randint(0, 364))


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def one_of(rng: random.Random, *phrasings: str) -> str:
    return rng.choice(phrasings)


def arithmetic(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["mul", "mul", "add", "sub", "pow", "div", "mod", "fact", "square", "sum", "percent"])
    a, b = rng.randint(1000, 999999), rng.randint(100, 99999)
    if kind == "mul":
        q = one_of(rng, f"What is {a} multiplied by {b}?", f"Compute {a} times {b}.", f"What is {a} * {b}?",
                   f"Calculate the product of {a} and {b}.", f"How much is {a} times {b}?")
        return q, f"print({a} * {b})"
    if kind == "add":
        c = rng.randint(1000, 9999999)
        q = one_of(rng, f"What is {a} plus {b} plus {c}?", f"How much is {a} + {b} + {c}?",
                   f"Add {a}, {b} and {c}.")
        return q, f"print({a} + {b} + {c})"
    if kind == "sub":
        a = rng.randint(10 ** 8, 10 ** 10)
        q = one_of(rng, f"What is {a} minus {b}?", f"Subtract {b} from {a}.", f"How much is {a} - {b}?")
        return q, f"print({a} - {b})"
    if kind == "pow":
        base, exp = rng.randint(2, 29), rng.randint(11, 60)
        q = one_of(rng, f"What is {base} to the power of {exp}?", f"Calculate {base} raised to the {ordinal(exp)} power.",
                   f"What is {base}**{exp}?")
        return q, f"print({base} ** {exp})"
    if kind == "div":
        q = one_of(rng, f"What is {a} divided by {b}, rounded down to a whole number?",
                   f"How many whole times does {b} go into {a}?")
        return q, f"print({a} // {b})"
    if kind == "mod":
        base, exp, m = rng.randint(2, 12), rng.randint(10, 40), rng.randint(7, 999)
        q = one_of(rng, f"What is the remainder when {base} to the power of {exp} is divided by {m}?",
                   f"What is {base}**{exp} modulo {m}?")
        return q, f"print({base} ** {exp} % {m})"
    if kind == "fact":
        n = rng.randint(8, 30)
        q = one_of(rng, f"What is {n} factorial?", f"Compute {n}!.", f"What is the factorial of {n}?")
        return q, f"import math\nprint(math.factorial({n}))"
    if kind == "square":
        q = one_of(rng, f"What is {a} squared?", f"Compute the square of {a}.")
        return q, f"print({a} ** 2)"
    if kind == "sum":
        n = rng.randint(1000, 999999)
        q = one_of(rng, f"What is the sum of all whole numbers from 1 to {n}?", f"Add up every integer from 1 to {n}.")
        return q, f"print(sum(range(1, {n} + 1)))"
    p = rng.randint(3, 97)
    q = one_of(rng, f"What is {p} percent of {a}?", f"Compute {p}% of {a}.")
    return q, f"print({p} * {a} / 100)"


def roots(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["isqrt", "sqrt", "cbrt", "nth", "log", "growth"])
    if kind == "isqrt":
        r = rng.randint(100, 99999)
        q = one_of(rng, f"What is the square root of {r * r}?", f"Find the square root of {r * r}.")
        return q, f"import math\nprint(math.isqrt({r * r}))"
    if kind == "sqrt":
        n, d = rng.randint(2, 999999), rng.choice([2, 3, 4, 6])
        q = one_of(rng, f"What is the square root of {n}, rounded to {d} decimal places?",
                   f"What is the square root of {n}, to {d} decimal places?")
        return q, f"print(round({n} ** 0.5, {d}))"
    if kind == "cbrt":
        r = rng.randint(5, 999)
        q = one_of(rng, f"What is the cube root of {r ** 3}?", f"Find the cube root of {r ** 3}.")
        return q, f"print(round({r ** 3} ** (1 / 3)))"
    if kind == "nth":
        k, r = rng.randint(4, 7), rng.randint(3, 60)
        q = f"What is the {ordinal(k)} root of {r ** k}?"
        return q, f"print(round({r ** k} ** (1 / {k})))"
    if kind == "log":
        n, d = rng.randint(2, 99999), rng.choice([3, 4])
        q = f"What is the natural logarithm of {n}, to {d} decimal places?"
        return q, f"import math\nprint(round(math.log({n}), {d}))"
    rate, years = rng.randint(101, 115) / 100, rng.randint(5, 50)
    q = f"What is {rate} to the power of {years}, rounded to 4 decimal places?"
    return q, f"print(round({rate} ** {years}, 4))"


PRIME_LOOP = "n = {n}\nprimes = [p for p in range(2, n) if all(p % d for d in range(2, int(p ** 0.5) + 1))]\n"


def primes(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["nth", "count", "lpf", "sum", "next", "gcd", "lcm", "divisors", "fib", "comb", "digits"])
    if kind == "nth":
        k = rng.randint(20, 3000)
        q = one_of(rng, f"What is the {ordinal(k)} prime number?", f"Find the {ordinal(k)} prime.")
        return q, f"k = {k}\nprimes = []\nn = 2\nwhile len(primes) < k:\n    if all(n % p for p in primes if p * p <= n):\n        primes.append(n)\n    n += 1\nprint(primes[-1])"
    if kind == "count":
        n = rng.randint(100, 30000)
        q = one_of(rng, f"How many prime numbers are there below {n}?", f"Count the primes smaller than {n}.")
        return q, PRIME_LOOP.format(n=n) + "print(len(primes))"
    if kind == "lpf":
        n = rng.randint(10 ** 5, 10 ** 12)
        q = one_of(rng, f"What is the largest prime factor of {n}?", f"Find the biggest prime factor of {n}.")
        return q, f"n = {n}\nf = 2\nwhile f * f <= n:\n    while n % f == 0 and n > f:\n        n //= f\n    f += 1\nprint(n)"
    if kind == "sum":
        n = rng.randint(50, 20000)
        q = one_of(rng, f"What is the sum of all prime numbers below {n}?", f"Add up the primes smaller than {n}.")
        return q, PRIME_LOOP.format(n=n) + "print(sum(primes))"
    if kind == "next":
        n = rng.randint(100, 10 ** 7)
        q = one_of(rng, f"What is the smallest prime number greater than {n}?", f"Find the first prime after {n}.")
        return q, f"n = {n} + 1\nwhile not all(n % d for d in range(2, int(n ** 0.5) + 1)):\n    n += 1\nprint(n)"
    if kind == "gcd":
        a, b = rng.randint(100, 99999), rng.randint(100, 99999)
        q = one_of(rng, f"What is the greatest common divisor of {a} and {b}?", f"Find the GCD of {a} and {b}.")
        return q, f"import math\nprint(math.gcd({a}, {b}))"
    if kind == "lcm":
        a, b, c = rng.randint(6, 999), rng.randint(6, 999), rng.randint(6, 999)
        q = one_of(rng, f"What is the least common multiple of {a}, {b} and {c}?", f"Find the LCM of {a}, {b} and {c}.")
        return q, f"import math\nprint(math.lcm({a}, {b}, {c}))"
    if kind == "divisors":
        n = rng.randint(100, 999999)
        q = one_of(rng, f"How many divisors does {n} have?", f"Count the divisors of {n}.")
        return q, f"n = {n}\nprint(sum(1 for d in range(1, n + 1) if n % d == 0))"
    if kind == "fib":
        n = rng.randint(20, 150)
        q = one_of(rng, f"What is the {ordinal(n)} Fibonacci number (with F(1) = F(2) = 1)?",
                   f"Compute the Fibonacci number F({n}), where F(1) = F(2) = 1.")
        return q, f"a, b = 0, 1\nfor _ in range({n}):\n    a, b = b, a + b\nprint(a)"
    if kind == "comb":
        n = rng.randint(10, 80)
        k = rng.randint(2, min(12, n - 1))
        q = one_of(rng, f"In how many ways can you choose {k} items out of {n}?", f"What is {n} choose {k}?")
        return q, f"import math\nprint(math.comb({n}, {k}))"
    base, exp = rng.randint(2, 9), rng.randint(20, 300)
    q = one_of(rng, f"What is the sum of the digits of {base} to the power of {exp}?",
               f"Add up the digits of {base}**{exp}.")
    return q, f"print(sum(int(c) for c in str({base} ** {exp})))"


def dates(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["between", "weekday", "after", "yday", "weeks", "leap"])
    d1 = random_date(rng)
    if kind == "between":
        d2 = d1 + timedelta(days=rng.randint(1, 40000))
        q = one_of(rng, f"How many days are there between {spoken(d1)} and {spoken(d2)}?",
                   f"How many days are there from {spoken(d1)} to {spoken(d2)}?")
        return q, (f"from datetime import date\nprint((date({d2.year}, {d2.month}, {d2.day}) - "
                   f"date({d1.year}, {d1.month}, {d1.day})).days)")
    if kind == "weekday":
        q = one_of(rng, f"On which day of the week did {spoken(d1)} fall?", f"What day of the week was {spoken(d1)}?",
                   f"On which day of the week will {spoken(d1)} fall?")
        return q, f"from datetime import date\nprint(date({d1.year}, {d1.month}, {d1.day}).strftime('%A'))"
    if kind == "after":
        n = rng.randint(10, 5000)
        q = f"What date is {n} days after {spoken(d1)}? Answer in YYYY-MM-DD format."
        return q, (f"from datetime import date, timedelta\nprint(date({d1.year}, {d1.month}, {d1.day}) + "
                   f"timedelta(days={n}))")
    if kind == "yday":
        q = f"What day of the year (1 to 366) is {spoken(d1)}?"
        return q, f"from datetime import date\nprint(date({d1.year}, {d1.month}, {d1.day}).timetuple().tm_yday)"
    if kind == "weeks":
        n = rng.randint(30, 99999)
        q = f"How many full weeks are there in {n} days?"
        return q, f"print({n} // 7)"
    y1 = rng.randint(1600, 2200)
    y2 = y1 + rng.randint(10, 400)
    q = f"How many leap years are there from {y1} to {y2} inclusive?"
    return q, f"print(sum(1 for y in range({y1}, {y2} + 1) if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)))"


def units(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["miles", "f2c", "ftin", "kg", "seconds", "kmh", "c2k", "ha"])
    if kind == "miles":
        n = rng.randint(2, 9999)
        return f"How many kilometres are {n} miles? (1 mile = 1.609344 km)", f"print({n} * 1.609344)"
    if kind == "f2c":
        f = rng.randint(-60, 500)
        return f"Convert {f} degrees Fahrenheit to Celsius.", f"print(round(({f} - 32) * 5 / 9, 2))"
    if kind == "ftin":
        ft, inch = rng.randint(1, 9), rng.randint(0, 11)
        return (f"How many centimetres are {ft} feet {inch} inches? (1 inch = 2.54 cm)",
                f"print(round(({ft} * 12 + {inch}) * 2.54, 2))")
    if kind == "kg":
        kg = rng.randint(1, 999) / 10
        return (f"How many pounds are {kg} kilograms, to 2 decimal places? (1 kg = 2.20462 lb)",
                f"print(round({kg} * 2.20462, 2))")
    if kind == "seconds":
        n, unit, factor = rng.randint(2, 99), *rng.choice([("days", "24 * 3600"), ("weeks", "7 * 24 * 3600"),
                                                             ("hours", "3600")])
        return f"How many seconds are there in {n} {unit}?", f"print({n} * {factor})"
    if kind == "kmh":
        v = rng.randint(5, 400)
        return f"A train moves at {v} km/h. What is its speed in metres per second?", f"print(round({v} / 3.6, 2))"
    if kind == "c2k":
        c = rng.randint(-273, 2000)
        return f"Convert {c} degrees Celsius to Kelvin.", f"print(round({c} + 273.15, 2))"
    h = rng.randint(1, 500) / 10
    return f"How many square metres is {h} hectares?", f"print({h} * 10000)"


def strings(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["reverse", "count", "length", "vowels", "words", "ord", "sort", "distinct", "bin", "hex"])
    w = rng.choice(WORDS) + rng.choice(WORDS)
    sentence = " ".join(rng.sample(WORDS, rng.randint(4, 9)))
    if kind == "reverse":
        return one_of(rng, f"Reverse the string '{w}'.", f"What is '{w}' spelled backwards?"), f"print('{w}'[::-1])"
    if kind == "count":
        letter = rng.choice(sorted(set(sentence.replace(" ", ""))))
        return (f"How many times does the letter {letter} appear in '{sentence}'?",
                f"print('{sentence}'.count('{letter}'))")
    if kind == "length":
        return f"How many characters long is the string '{w}'?", f"print(len('{w}'))"
    if kind == "vowels":
        return (f"How many vowels (a, e, i, o, u) are in '{sentence}'?",
                f"print(sum(c in 'aeiou' for c in '{sentence}'))")
    if kind == "words":
        return f"How many words are in the sentence '{sentence}'?", f"print(len('{sentence}'.split()))"
    if kind == "ord":
        c = rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYabcdefghijklmnopqrstuvwxyz0123456789")
        return f"What is the Unicode code point (decimal) of the character '{c}'?", f"print(ord('{c}'))"
    if kind == "sort":
        return f"Sort the letters of the word '{w}' alphabetically.", f"print(''.join(sorted('{w}')))"
    if kind == "distinct":
        return f"How many distinct letters are in the word '{w}'?", f"print(len(set('{w}')))"
    n = rng.randint(2, 99999)
    if kind == "bin":
        return one_of(rng, f"Write the number {n} in binary.", f"What is {n} in binary?"), f"print(bin({n})[2:])"
    return one_of(rng, f"What is {n} in hexadecimal?", f"Write {n} in hexadecimal."), f"print(format({n}, 'x'))"


def lists(rng: random.Random) -> tuple[str, str]:
    kind = rng.choice(["sum", "median", "mean", "sort", "product", "range", "pstdev", "multiples"])
    values = [rng.randint(1, 999) for _ in range(rng.randint(4, 9))]
    shown = "[" + ", ".join(map(str, values)) + "]"
    if kind == "sum":
        return f"What is the sum of the list {shown}?", f"print(sum({shown}))"
    if kind == "median":
        return f"What is the median of {shown}?", f"import statistics\nprint(statistics.median({shown}))"
    if kind == "mean":
        return f"What is the mean of {shown}?", f"import statistics\nprint(statistics.mean({shown}))"
    if kind == "sort":
        return f"Sort {shown} in ascending order.", f"print(', '.join(map(str, sorted({shown}))))"
    if kind == "product":
        return f"What is the product of all numbers in {shown}?", f"import math\nprint(math.prod({shown}))"
    if kind == "range":
        return (f"What is the largest difference between two numbers in {shown}?",
                f"print(max({shown}) - min({shown}))")
    if kind == "pstdev":
        return (f"What is the population standard deviation of {shown}, to 4 decimal places?",
                f"import statistics\nprint(round(statistics.pstdev({shown}), 4))")
    a, b = rng.randint(2, 9), rng.randint(2, 13)
    n = rng.randint(100, 99999)
    return (f"How many numbers between 1 and {n} are divisible by both {a} and {b}?",
            f"import math\nprint(sum(1 for k in range(1, {n} + 1) if k % math.lcm({a}, {b}) == 0))")


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
        answer = rng.choice(ANSWERS).format(r=result)
        records.append({"messages": [
            {"role": "user", "content": question},
            {"role": "assistant", "content": f"<|code|>\n{code}\n<|end|>"},
            {"role": "tool", "content": result},
            {"role": "assistant", "content": answer},
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
    parser.add_argument("--against", type=Path, default=ROOT / "benchmarks" / "suites")
    args = parser.parse_args()
    records, dropped = without_contamination(make(args.n), args.against)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    print(f"{args.out}: {len(records)} conversations ({dropped} dropped by the contamination check)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
