"""Write benchmarks/suites/tools.yaml and benchmarks/suites/code.yaml, the suites graded by computation.

Every expected answer of ``tools`` is computed here by Python (never typed by hand), and every hidden
test of ``code`` is checked here against a reference solution before the file is written, so a suite
cannot ship a wrong answer. Ids are written out by hand and never renumbered: append new items with
new ids, and bump the suite's version.

    python scripts/make_tool_suites.py            # rewrites both files (deterministic)
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from fractions import Fraction
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SUITES = ROOT / "benchmarks" / "suites"
GUARDS = [{"type": "no_repetition", "weight": 0.5}]


def primes_below(n: int) -> list[int]:
    sieve = bytearray([1]) * n
    sieve[0:2] = b"\x00\x00"
    for i in range(2, int(n ** 0.5) + 1):
        if sieve[i]:
            sieve[i * i::i] = bytearray(len(sieve[i * i::i]))
    return [i for i in range(n) if sieve[i]]


PRIMES = primes_below(200_000)


def largest_prime_factor(n: int) -> int:
    factor, largest = 2, 1
    while factor * factor <= n:
        while n % factor == 0:
            largest, n = factor, n // factor
        factor += 1
    return max(largest, n) if n > 1 else largest


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def num(value) -> str:
    """An exact decimal string for the suite (integers whole, fractions to 6 decimals)."""
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.6f}".rstrip("0").rstrip(".")


# (id, tags, prompt, answer, options): answer is a number (numeric_answer) or a list of strings
# (final_answer_contains). options: rel_tol / abs_tol for numbers.
TOOLS = [
    # -- large arithmetic
    ("tools-arith-001", ["arithmetic"], "What is 48271 multiplied by 93817?", 48271 * 93817, {}),
    ("tools-arith-002", ["arithmetic"], "Compute 987654321 times 123456789.", 987654321 * 123456789, {}),
    ("tools-arith-003", ["arithmetic"], "What is 2 to the power of 89?", 2 ** 89, {}),
    ("tools-arith-004", ["arithmetic"], "Calculate 7 raised to the 23rd power.", 7 ** 23, {}),
    ("tools-arith-005", ["arithmetic"], "What is the sum of all whole numbers from 1 to 98765?", 98765 * 98766 // 2, {}),
    ("tools-arith-006", ["arithmetic"], "What is 9876543210 minus 1234567899?", 9876543210 - 1234567899, {}),
    ("tools-arith-007", ["arithmetic"], "How much is 31415926 + 27182818 + 14142135?", 31415926 + 27182818 + 14142135, {}),
    ("tools-arith-008", ["arithmetic"], "What is 123456789 divided by 4567, rounded down to a whole number?",
     123456789 // 4567, {}),
    ("tools-arith-009", ["arithmetic"], "What is the remainder when 10 to the 18th power is divided by 97?",
     10 ** 18 % 97, {}),
    ("tools-arith-010", ["arithmetic"], "What is 20 factorial?", math.factorial(20), {}),
    ("tools-arith-011", ["arithmetic"], "What is 999999 squared?", 999999 ** 2, {}),
    ("tools-arith-012", ["arithmetic"], "Multiply 314159 by 271828 and then subtract 1000000.",
     314159 * 271828 - 1000000, {}),
    ("tools-arith-013", ["arithmetic"], "What is 17 to the power of 13?", 17 ** 13, {}),
    ("tools-arith-014", ["arithmetic"], "What is 73 percent of 48650?", Fraction(73 * 48650, 100), {}),
    # -- roots and powers
    ("tools-root-001", ["roots"], "What is the square root of 1522756?", math.isqrt(1522756), {}),
    ("tools-root-002", ["roots"], "What is the cube root of 91125?", 45, {}),
    ("tools-root-003", ["roots"], "What is the square root of 2, to 6 decimal places?", math.sqrt(2), {"abs_tol": 1e-6}),
    ("tools-root-004", ["roots"], "What is the square root of 98765, rounded to 3 decimal places?",
     round(math.sqrt(98765), 3), {"abs_tol": 0.001}),
    ("tools-root-005", ["roots"], "What is the 5th root of 3276800000?", 80, {}),
    ("tools-root-006", ["roots"], "What is the natural logarithm of 1000, to 4 decimal places?",
     round(math.log(1000), 4), {"abs_tol": 1e-4}),
    ("tools-root-007", ["roots"], "What is 1.07 to the power of 30, rounded to 4 decimal places?",
     round(1.07 ** 30, 4), {"abs_tol": 1e-4}),
    ("tools-root-008", ["roots"], "What is the integer square root (rounded down) of 10 to the 15th power?",
     math.isqrt(10 ** 15), {}),
    # -- primes and number theory
    ("tools-prime-001", ["primes"], "What is the 500th prime number?", PRIMES[499], {}),
    ("tools-prime-002", ["primes"], "How many prime numbers are there below 10000?", len(primes_below(10000)), {}),
    ("tools-prime-003", ["primes"], "What is the largest prime factor of 600851475143?",
     largest_prime_factor(600851475143), {}),
    ("tools-prime-004", ["primes"], "What is the sum of all prime numbers below 1000?", sum(primes_below(1000)), {}),
    ("tools-prime-005", ["primes"], "What is the smallest prime number greater than 100000?",
     next(p for p in PRIMES if p > 100000), {}),
    ("tools-prime-006", ["primes"], "What is the greatest common divisor of 1071 and 462?", math.gcd(1071, 462), {}),
    ("tools-prime-007", ["primes"], "What is the least common multiple of 84, 126 and 210?",
     math.lcm(84, 126, 210), {}),
    ("tools-prime-008", ["primes"], "How many divisors does 720720 have?",
     sum(1 for d in range(1, 720721) if 720720 % d == 0), {}),
    ("tools-prime-009", ["primes"], "What is the 60th Fibonacci number (with F(1) = F(2) = 1)?", fib(60), {}),
    ("tools-prime-010", ["primes"], "In how many ways can you choose 6 numbers out of 49?", math.comb(49, 6), {}),
    ("tools-prime-011", ["primes"], "What is the sum of the digits of 2 to the power of 100?",
     sum(map(int, str(2 ** 100))), {}),
    # -- dates
    ("tools-date-001", ["dates"], "How many days are there between 15 January 2023 and 2 November 2024?",
     (date(2024, 11, 2) - date(2023, 1, 15)).days, {}),
    ("tools-date-002", ["dates"], "On which day of the week did 20 July 1969 fall?",
     [date(1969, 7, 20).strftime("%A")], {}),
    ("tools-date-003", ["dates"], "What date is 1000 days after 29 February 2020? Answer in YYYY-MM-DD format.",
     [(date(2020, 2, 29) + timedelta(days=1000)).isoformat()], {}),
    ("tools-date-004", ["dates"], "How many days are there from 1 March 2000 to 1 March 2100?",
     (date(2100, 3, 1) - date(2000, 3, 1)).days, {}),
    ("tools-date-005", ["dates"], "What day of the year (1 to 366) is 9 August 2028?",
     date(2028, 8, 9).timetuple().tm_yday, {}),
    ("tools-date-006", ["dates"], "On which day of the week will 1 January 2077 fall?",
     [date(2077, 1, 1).strftime("%A")], {}),
    ("tools-date-007", ["dates"], "How many weeks and leftover days are in 1000 days? Give the number of full weeks.",
     1000 // 7, {}),
    ("tools-date-008", ["dates"], "How many leap years are there from 1901 to 2099 inclusive?",
     sum(1 for y in range(1901, 2100) if y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)), {}),
    # -- unit conversions
    ("tools-unit-001", ["units"], "How many kilometres are 250 miles? (1 mile = 1.609344 km)",
     Fraction(250) * Fraction("1.609344"), {"abs_tol": 0.01}),
    ("tools-unit-002", ["units"], "Convert 98.6 degrees Fahrenheit to Celsius.", 37, {"abs_tol": 0.01}),
    ("tools-unit-003", ["units"], "How many centimetres are 5 feet 11 inches? (1 inch = 2.54 cm)",
     Fraction(71) * Fraction("2.54"), {"abs_tol": 0.01}),
    ("tools-unit-004", ["units"], "How many pounds are 3.5 kilograms, to 2 decimal places? (1 kg = 2.20462 lb)",
     round(3.5 * 2.20462, 2), {"abs_tol": 0.01}),
    ("tools-unit-005", ["units"], "How many seconds are there in 3 weeks?", 3 * 7 * 24 * 3600, {}),
    ("tools-unit-006", ["units"], "Convert 1 gigabyte of 2 to the 30th bytes into kilobytes of 1024 bytes.", 2 ** 20, {}),
    ("tools-unit-007", ["units"], "A car drives at 108 km/h. What is its speed in metres per second?", 30, {"abs_tol": 0.01}),
    ("tools-unit-008", ["units"], "Convert -40 degrees Celsius to Kelvin.", Fraction("233.15"), {"abs_tol": 0.01}),
    ("tools-unit-009", ["units"], "How many square metres is 2.5 hectares?", 25000, {"abs_tol": 0.5}),
    # -- strings
    ("tools-str-001", ["strings"], "Reverse the string 'benchmarking'.", ["gnikramhcneb"], {}),
    ("tools-str-002", ["strings"], "How many times does the letter s appear in 'mississippi assessments'?",
     "mississippi assessments".count("s"), {}),
    ("tools-str-003", ["strings"], "How many characters long is the string 'supercalifragilisticexpialidocious'?",
     len("supercalifragilisticexpialidocious"), {}),
    ("tools-str-004", ["strings"], "How many vowels (a, e, i, o, u) are in 'the quick brown fox jumps over the lazy dog'?",
     sum(c in "aeiou" for c in "the quick brown fox jumps over the lazy dog"), {}),
    ("tools-str-005", ["strings"], "How many words are in the sentence 'a stitch in time saves nine but only if you sew'?",
     len("a stitch in time saves nine but only if you sew".split()), {}),
    ("tools-str-006", ["strings"], "What is the Unicode code point (decimal) of the character 'Z'?", ord("Z"), {}),
    ("tools-str-007", ["strings"], "Sort the letters of the word 'algorithm' alphabetically.",
     ["".join(sorted("algorithm"))], {}),
    ("tools-str-008", ["strings"], "How many distinct letters are in the word 'abracadabra'?", len(set("abracadabra")), {}),
    ("tools-str-009", ["strings"], "Write the number 2024 in binary.", [bin(2024)[2:]], {}),
    ("tools-str-010", ["strings"], "What is 255 in hexadecimal?", [format(255, "x"), format(255, "X")], {}),
    # -- lists
    ("tools-list-001", ["lists"], "What is the sum of the list [17, 42, 93, 8, 61, 25, 70]?", 17 + 42 + 93 + 8 + 61 + 25 + 70, {}),
    ("tools-list-002", ["lists"], "What is the median of [12, 7, 3, 19, 25, 8, 14, 30]?",
     Fraction(12 + 14, 2), {}),
    ("tools-list-003", ["lists"], "What is the mean of 4, 8, 15, 16, 23 and 42?", Fraction(4 + 8 + 15 + 16 + 23 + 42, 6), {}),
    ("tools-list-004", ["lists"], "Sort [34, 7, 23, 32, 5, 62] in ascending order.", ["5, 7, 23, 32, 34, 62"], {}),
    ("tools-list-005", ["lists"], "What is the product of all numbers in [3, 5, 7, 11, 13, 17]?", 3 * 5 * 7 * 11 * 13 * 17, {}),
    ("tools-list-006", ["lists"], "What is the largest difference between two numbers in [48, 3, 91, 27, 65, 12]?",
     91 - 3, {}),
    ("tools-list-007", ["lists"], "What is the population standard deviation of [2, 4, 4, 4, 5, 5, 7, 9]?", 2, {"abs_tol": 1e-6}),
    ("tools-list-008", ["lists"], "How many even numbers are there between 1 and 999 that are divisible by 7?",
     sum(1 for n in range(1, 1000) if n % 14 == 0), {}),
]


def tools_items() -> list[dict]:
    items, seen = [], set()
    for item_id, tags, prompt, answer, options in TOOLS:
        assert item_id not in seen, item_id
        seen.add(item_id)
        if isinstance(answer, list):
            check = {"type": "final_answer_contains", "values": answer, "weight": 4}
            reference = answer[0]
        else:
            check = {"type": "numeric_answer", "value": num(answer), "weight": 4, **options}
            reference = num(answer)
        items.append({"id": item_id, "prompt": prompt, "references": [f"The answer is {reference}."],
                      "tags": tags, "max_new_tokens": 160, "checks": [check, *(dict(g) for g in GUARDS)]})
    return items


# (id, tags, prompt, reference solution, tests): each test line is one assert.
CODE = [
    ("code-func-001", ["numbers"], "Write a Python function `is_prime(n)` that returns True if the integer n is a prime number and False otherwise.",
     "def is_prime(n):\n    if n < 2:\n        return False\n    i = 2\n    while i * i <= n:\n        if n % i == 0:\n            return False\n        i += 1\n    return True",
     ["assert is_prime(2) is True", "assert is_prime(1) is False", "assert is_prime(0) is False", "assert is_prime(97) is True",
      "assert is_prime(91) is False", "assert is_prime(7919) is True", "assert is_prime(-5) is False"]),
    ("code-func-002", ["numbers"], "Write a Python function `factorial(n)` that returns n! for a non-negative integer n.",
     "def factorial(n):\n    out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out",
     ["assert factorial(0) == 1", "assert factorial(1) == 1", "assert factorial(5) == 120", "assert factorial(20) == 2432902008176640000"]),
    ("code-func-003", ["numbers"], "Write a Python function `fibonacci(n)` that returns the n-th Fibonacci number, with fibonacci(0) = 0 and fibonacci(1) = 1. It must be fast for n up to 90.",
     "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a",
     ["assert fibonacci(0) == 0", "assert fibonacci(1) == 1", "assert fibonacci(10) == 55", "assert fibonacci(90) == 2880067194370816120"]),
    ("code-func-004", ["numbers"], "Write a Python function `gcd(a, b)` that returns the greatest common divisor of two positive integers without using the math module.",
     "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a",
     ["assert gcd(12, 18) == 6", "assert gcd(17, 5) == 1", "assert gcd(1071, 462) == 21", "assert gcd(100, 100) == 100"]),
    ("code-func-005", ["numbers"], "Write a Python function `digit_sum(n)` that returns the sum of the decimal digits of a non-negative integer n.",
     "def digit_sum(n):\n    return sum(int(c) for c in str(n))",
     ["assert digit_sum(0) == 0", "assert digit_sum(12345) == 15", "assert digit_sum(2 ** 100) == 115", "assert digit_sum(9) == 9"]),
    ("code-func-006", ["numbers"], "Write a Python function `is_perfect_square(n)` that returns True when the non-negative integer n is a perfect square.",
     "def is_perfect_square(n):\n    r = int(n ** 0.5)\n    while r * r > n:\n        r -= 1\n    while (r + 1) * (r + 1) <= n:\n        r += 1\n    return r * r == n",
     ["assert is_perfect_square(0) is True", "assert is_perfect_square(16) is True", "assert is_perfect_square(15) is False",
      "assert is_perfect_square(10 ** 16) is True", "assert is_perfect_square(10 ** 16 + 1) is False"]),
    ("code-func-007", ["numbers"], "Write a Python function `collatz_steps(n)` that returns how many steps the Collatz process (n -> n/2 if even, 3n+1 if odd) takes to reach 1 from a positive integer n.",
     "def collatz_steps(n):\n    steps = 0\n    while n != 1:\n        n = n // 2 if n % 2 == 0 else 3 * n + 1\n        steps += 1\n    return steps",
     ["assert collatz_steps(1) == 0", "assert collatz_steps(6) == 8", "assert collatz_steps(27) == 111"]),
    ("code-func-008", ["numbers"], "Write a Python function `to_binary(n)` that returns the binary representation of a non-negative integer as a string, without using bin() or format().",
     "def to_binary(n):\n    if n == 0:\n        return '0'\n    out = ''\n    while n:\n        out = str(n % 2) + out\n        n //= 2\n    return out",
     ["assert to_binary(0) == '0'", "assert to_binary(5) == '101'", "assert to_binary(2024) == '11111101000'", "assert to_binary(1) == '1'"]),
    ("code-func-009", ["numbers"], "Write a Python function `prime_factors(n)` that returns the list of prime factors of an integer n > 1 in increasing order, with repetition (prime_factors(12) == [2, 2, 3]).",
     "def prime_factors(n):\n    out, f = [], 2\n    while f * f <= n:\n        while n % f == 0:\n            out.append(f)\n            n //= f\n        f += 1\n    if n > 1:\n        out.append(n)\n    return out",
     ["assert prime_factors(12) == [2, 2, 3]", "assert prime_factors(97) == [97]", "assert prime_factors(360) == [2, 2, 2, 3, 3, 5]",
      "assert prime_factors(600851475143) == [71, 839, 1471, 6857]"]),
    ("code-func-010", ["numbers"], "Write a Python function `roman_to_int(s)` that converts a Roman numeral string such as 'MCMXCIV' to an integer.",
     "def roman_to_int(s):\n    v = {'I': 1, 'V': 5, 'X': 10, 'L': 50, 'C': 100, 'D': 500, 'M': 1000}\n    total = 0\n    for i, c in enumerate(s):\n        if i + 1 < len(s) and v[c] < v[s[i + 1]]:\n            total -= v[c]\n        else:\n            total += v[c]\n    return total",
     ["assert roman_to_int('III') == 3", "assert roman_to_int('IV') == 4", "assert roman_to_int('MCMXCIV') == 1994", "assert roman_to_int('LVIII') == 58"]),
    ("code-func-011", ["numbers"], "Write a Python function `int_to_roman(n)` that converts an integer from 1 to 3999 to a Roman numeral string.",
     "def int_to_roman(n):\n    pairs = [(1000, 'M'), (900, 'CM'), (500, 'D'), (400, 'CD'), (100, 'C'), (90, 'XC'), (50, 'L'), (40, 'XL'), (10, 'X'), (9, 'IX'), (5, 'V'), (4, 'IV'), (1, 'I')]\n    out = ''\n    for value, sym in pairs:\n        while n >= value:\n            out += sym\n            n -= value\n    return out",
     ["assert int_to_roman(3) == 'III'", "assert int_to_roman(1994) == 'MCMXCIV'", "assert int_to_roman(3999) == 'MMMCMXCIX'", "assert int_to_roman(40) == 'XL'"]),
    ("code-func-012", ["numbers"], "Write a Python function `sum_of_multiples(limit)` that returns the sum of all natural numbers below limit that are multiples of 3 or 5.",
     "def sum_of_multiples(limit):\n    return sum(i for i in range(limit) if i % 3 == 0 or i % 5 == 0)",
     ["assert sum_of_multiples(10) == 23", "assert sum_of_multiples(1000) == 233168", "assert sum_of_multiples(1) == 0"]),
    # -- strings
    ("code-str-001", ["strings"], "Write a Python function `reverse_string(s)` that returns the string s reversed.",
     "def reverse_string(s):\n    return s[::-1]",
     ["assert reverse_string('abc') == 'cba'", "assert reverse_string('') == ''", "assert reverse_string('racecar') == 'racecar'"]),
    ("code-str-002", ["strings"], "Write a Python function `is_palindrome(s)` that returns True if s reads the same forwards and backwards, ignoring case, spaces and punctuation.",
     "def is_palindrome(s):\n    t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]",
     ["assert is_palindrome('A man, a plan, a canal: Panama') is True", "assert is_palindrome('hello') is False",
      "assert is_palindrome('') is True", "assert is_palindrome('No lemon, no melon') is True"]),
    ("code-str-003", ["strings"], "Write a Python function `count_vowels(s)` that returns the number of vowels (a, e, i, o, u, upper or lower case) in s.",
     "def count_vowels(s):\n    return sum(c in 'aeiouAEIOU' for c in s)",
     ["assert count_vowels('hello') == 2", "assert count_vowels('AEIOU xyz') == 5", "assert count_vowels('') == 0", "assert count_vowels('rhythm') == 0"]),
    ("code-str-004", ["strings"], "Write a Python function `word_count(text)` that returns a dictionary mapping each lower-cased word of text (split on whitespace) to how many times it occurs.",
     "def word_count(text):\n    out = {}\n    for w in text.lower().split():\n        out[w] = out.get(w, 0) + 1\n    return out",
     ["assert word_count('the cat the Dog') == {'the': 2, 'cat': 1, 'dog': 1}", "assert word_count('') == {}", "assert word_count('a a a') == {'a': 3}"]),
    ("code-str-005", ["strings"], "Write a Python function `is_anagram(a, b)` that returns True when the two strings are anagrams of each other (same letters, ignoring case and spaces).",
     "def is_anagram(a, b):\n    norm = lambda s: sorted(s.replace(' ', '').lower())\n    return norm(a) == norm(b)",
     ["assert is_anagram('listen', 'silent') is True", "assert is_anagram('Dormitory', 'dirty room') is True", "assert is_anagram('abc', 'abd') is False"]),
    ("code-str-006", ["strings"], "Write a Python function `capitalize_words(s)` that returns s with the first letter of every space-separated word in upper case and the rest unchanged.",
     "def capitalize_words(s):\n    return ' '.join(w[:1].upper() + w[1:] for w in s.split(' '))",
     ["assert capitalize_words('hello world') == 'Hello World'", "assert capitalize_words('python is fun') == 'Python Is Fun'", "assert capitalize_words('a') == 'A'"]),
    ("code-str-007", ["strings"], "Write a Python function `compress(s)` that performs run-length encoding: 'aaabcc' becomes 'a3b1c2'.",
     "def compress(s):\n    out, i = '', 0\n    while i < len(s):\n        j = i\n        while j < len(s) and s[j] == s[i]:\n            j += 1\n        out += s[i] + str(j - i)\n        i = j\n    return out",
     ["assert compress('aaabcc') == 'a3b1c2'", "assert compress('') == ''", "assert compress('abc') == 'a1b1c1'", "assert compress('zzzzzzzzzzzz') == 'z12'"]),
    ("code-str-008", ["strings"], "Write a Python function `caesar(text, shift)` that shifts each lowercase letter of text by shift positions in the alphabet (wrapping around) and leaves other characters unchanged.",
     "def caesar(text, shift):\n    return ''.join(chr((ord(c) - 97 + shift) % 26 + 97) if 'a' <= c <= 'z' else c for c in text)",
     ["assert caesar('abc', 1) == 'bcd'", "assert caesar('xyz', 3) == 'abc'", "assert caesar('hello, world', 13) == 'uryyb, jbeyq'", "assert caesar('abc', -1) == 'zab'"]),
    ("code-str-009", ["strings"], "Write a Python function `longest_word(sentence)` that returns the longest word of a space-separated sentence (the first one if several have the same length).",
     "def longest_word(sentence):\n    best = ''\n    for w in sentence.split():\n        if len(w) > len(best):\n            best = w\n    return best",
     ["assert longest_word('the quick brown fox') == 'quick'", "assert longest_word('a bb cc') == 'bb'", "assert longest_word('single') == 'single'"]),
    ("code-str-010", ["strings"], "Write a Python function `first_unique_char(s)` that returns the index of the first character that appears only once in s, or -1 if there is none.",
     "def first_unique_char(s):\n    for i, c in enumerate(s):\n        if s.count(c) == 1:\n            return i\n    return -1",
     ["assert first_unique_char('leetcode') == 0", "assert first_unique_char('loveleetcode') == 2", "assert first_unique_char('aabb') == -1"]),
    ("code-str-011", ["strings"], "Write a Python function `is_balanced(s)` that returns True if every bracket in s ((), [] and {}) is properly matched and nested.",
     "def is_balanced(s):\n    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n    for c in s:\n        if c in '([{':\n            stack.append(c)\n        elif c in pairs:\n            if not stack or stack.pop() != pairs[c]:\n                return False\n    return not stack",
     ["assert is_balanced('([]{})') is True", "assert is_balanced('([)]') is False", "assert is_balanced('') is True", "assert is_balanced('((') is False", "assert is_balanced('a(b)c') is True"]),
    ("code-str-012", ["strings"], "Write a Python function `snake_to_camel(name)` that converts a snake_case name such as 'max_new_tokens' to camelCase ('maxNewTokens').",
     "def snake_to_camel(name):\n    parts = name.split('_')\n    return parts[0] + ''.join(p[:1].upper() + p[1:] for p in parts[1:])",
     ["assert snake_to_camel('max_new_tokens') == 'maxNewTokens'", "assert snake_to_camel('word') == 'word'", "assert snake_to_camel('a_b') == 'aB'"]),
    # -- lists
    ("code-list-001", ["lists"], "Write a Python function `second_largest(nums)` that returns the second largest distinct value of a list of integers, or None if there is none.",
     "def second_largest(nums):\n    values = sorted(set(nums))\n    return values[-2] if len(values) > 1 else None",
     ["assert second_largest([3, 1, 4, 1, 5]) == 4", "assert second_largest([7, 7]) is None", "assert second_largest([]) is None", "assert second_largest([-1, -2]) == -2"]),
    ("code-list-002", ["lists"], "Write a Python function `flatten(nested)` that flattens an arbitrarily nested list of lists into a flat list.",
     "def flatten(nested):\n    out = []\n    for x in nested:\n        if isinstance(x, list):\n            out.extend(flatten(x))\n        else:\n            out.append(x)\n    return out",
     ["assert flatten([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]", "assert flatten([]) == []", "assert flatten([[], [[]]]) == []"]),
    ("code-list-003", ["lists"], "Write a Python function `remove_duplicates(items)` that returns a new list without duplicates, keeping the first occurrence of each value in order.",
     "def remove_duplicates(items):\n    seen, out = set(), []\n    for x in items:\n        if x not in seen:\n            seen.add(x)\n            out.append(x)\n    return out",
     ["assert remove_duplicates([3, 1, 3, 2, 1]) == [3, 1, 2]", "assert remove_duplicates([]) == []", "assert remove_duplicates(['a', 'a']) == ['a']"]),
    ("code-list-004", ["lists"], "Write a Python function `chunk(items, size)` that splits a list into consecutive chunks of the given size (the last chunk may be shorter).",
     "def chunk(items, size):\n    return [items[i:i + size] for i in range(0, len(items), size)]",
     ["assert chunk([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]", "assert chunk([], 3) == []", "assert chunk([1, 2, 3], 3) == [[1, 2, 3]]"]),
    ("code-list-005", ["lists"], "Write a Python function `merge_sorted(a, b)` that merges two sorted lists into one sorted list.",
     "def merge_sorted(a, b):\n    return sorted(a + b)",
     ["assert merge_sorted([1, 3, 5], [2, 4, 6]) == [1, 2, 3, 4, 5, 6]", "assert merge_sorted([], [1]) == [1]", "assert merge_sorted([1, 1], [1]) == [1, 1, 1]"]),
    ("code-list-006", ["lists"], "Write a Python function `rotate(items, k)` that rotates a list to the right by k positions (k may be larger than the length).",
     "def rotate(items, k):\n    if not items:\n        return []\n    k %= len(items)\n    return items[-k:] + items[:-k] if k else list(items)",
     ["assert rotate([1, 2, 3, 4, 5], 2) == [4, 5, 1, 2, 3]", "assert rotate([1, 2, 3], 3) == [1, 2, 3]", "assert rotate([1, 2, 3], 4) == [3, 1, 2]", "assert rotate([], 2) == []"]),
    ("code-list-007", ["lists"], "Write a Python function `running_sum(nums)` that returns the list of cumulative sums of nums.",
     "def running_sum(nums):\n    out, total = [], 0\n    for x in nums:\n        total += x\n        out.append(total)\n    return out",
     ["assert running_sum([1, 2, 3, 4]) == [1, 3, 6, 10]", "assert running_sum([]) == []", "assert running_sum([5, -5]) == [5, 0]"]),
    ("code-list-008", ["lists"], "Write a Python function `median(nums)` that returns the median of a non-empty list of numbers (the mean of the two middle values for an even length).",
     "def median(nums):\n    s = sorted(nums)\n    n = len(s)\n    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2",
     ["assert median([3, 1, 2]) == 2", "assert median([4, 1, 3, 2]) == 2.5", "assert median([7]) == 7"]),
    ("code-list-009", ["lists"], "Write a Python function `two_sum(nums, target)` that returns the indices [i, j] (i < j) of the two numbers of nums that add up to target, or None.",
     "def two_sum(nums, target):\n    seen = {}\n    for j, x in enumerate(nums):\n        if target - x in seen:\n            return [seen[target - x], j]\n        seen.setdefault(x, j)\n    return None",
     ["assert two_sum([2, 7, 11, 15], 9) == [0, 1]", "assert two_sum([3, 2, 4], 6) == [1, 2]", "assert two_sum([1, 2], 7) is None"]),
    ("code-list-010", ["lists"], "Write a Python function `max_subarray_sum(nums)` that returns the largest sum of a contiguous non-empty sub-list of nums.",
     "def max_subarray_sum(nums):\n    best = cur = nums[0]\n    for x in nums[1:]:\n        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best",
     ["assert max_subarray_sum([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6", "assert max_subarray_sum([-3, -1, -2]) == -1", "assert max_subarray_sum([5]) == 5"]),
    ("code-list-011", ["lists"], "Write a Python function `transpose(matrix)` that returns the transpose of a matrix given as a list of equal-length lists.",
     "def transpose(matrix):\n    return [list(row) for row in zip(*matrix)]",
     ["assert transpose([[1, 2, 3], [4, 5, 6]]) == [[1, 4], [2, 5], [3, 6]]", "assert transpose([[1]]) == [[1]]"]),
    ("code-list-012", ["lists"], "Write a Python function `binary_search(items, target)` that returns the index of target in the sorted list items, or -1 if it is absent.",
     "def binary_search(items, target):\n    lo, hi = 0, len(items) - 1\n    while lo <= hi:\n        mid = (lo + hi) // 2\n        if items[mid] == target:\n            return mid\n        if items[mid] < target:\n            lo = mid + 1\n        else:\n            hi = mid - 1\n    return -1",
     ["assert binary_search([1, 3, 5, 7, 9], 7) == 3", "assert binary_search([1, 3, 5], 4) == -1", "assert binary_search([], 1) == -1", "assert binary_search(list(range(0, 1000, 2)), 998) == 499"]),
    ("code-list-013", ["lists"], "Write a Python function `bubble_sort(items)` that returns a new list with the items sorted in ascending order, without using sorted() or list.sort().",
     "def bubble_sort(items):\n    a = list(items)\n    for i in range(len(a)):\n        for j in range(len(a) - 1 - i):\n            if a[j] > a[j + 1]:\n                a[j], a[j + 1] = a[j + 1], a[j]\n    return a",
     ["assert bubble_sort([5, 2, 9, 1]) == [1, 2, 5, 9]", "assert bubble_sort([]) == []", "assert bubble_sort([3, 3, 1]) == [1, 3, 3]"]),
    # -- dictionaries and misc
    ("code-misc-001", ["dicts"], "Write a Python function `invert_dict(d)` that swaps the keys and values of a dictionary whose values are unique.",
     "def invert_dict(d):\n    return {v: k for k, v in d.items()}",
     ["assert invert_dict({'a': 1, 'b': 2}) == {1: 'a', 2: 'b'}", "assert invert_dict({}) == {}"]),
    ("code-misc-002", ["dicts"], "Write a Python function `char_frequency(s)` that returns a dictionary mapping each character of s to the number of times it appears.",
     "def char_frequency(s):\n    out = {}\n    for c in s:\n        out[c] = out.get(c, 0) + 1\n    return out",
     ["assert char_frequency('hello') == {'h': 1, 'e': 1, 'l': 2, 'o': 1}", "assert char_frequency('') == {}"]),
    ("code-misc-003", ["dicts"], "Write a Python function `group_by_length(words)` that returns a dictionary mapping each word length to the list of words of that length, in their original order.",
     "def group_by_length(words):\n    out = {}\n    for w in words:\n        out.setdefault(len(w), []).append(w)\n    return out",
     ["assert group_by_length(['a', 'bb', 'c', 'dd', 'eee']) == {1: ['a', 'c'], 2: ['bb', 'dd'], 3: ['eee']}", "assert group_by_length([]) == {}"]),
    ("code-misc-004", ["misc"], "Write a Python function `fizzbuzz(n)` that returns a list of strings for 1..n: 'Fizz' for multiples of 3, 'Buzz' for multiples of 5, 'FizzBuzz' for both, else the number as a string.",
     "def fizzbuzz(n):\n    out = []\n    for i in range(1, n + 1):\n        s = ('Fizz' if i % 3 == 0 else '') + ('Buzz' if i % 5 == 0 else '')\n        out.append(s or str(i))\n    return out",
     ["assert fizzbuzz(5) == ['1', '2', 'Fizz', '4', 'Buzz']", "assert fizzbuzz(15)[-1] == 'FizzBuzz'", "assert fizzbuzz(0) == []"]),
    ("code-misc-005", ["misc"], "Write a Python function `celsius_to_fahrenheit(c)` that converts a temperature from degrees Celsius to degrees Fahrenheit.",
     "def celsius_to_fahrenheit(c):\n    return c * 9 / 5 + 32",
     ["assert celsius_to_fahrenheit(0) == 32", "assert celsius_to_fahrenheit(100) == 212", "assert abs(celsius_to_fahrenheit(37) - 98.6) < 1e-9", "assert celsius_to_fahrenheit(-40) == -40"]),
    ("code-misc-006", ["misc"], "Write a Python function `is_leap_year(year)` that returns True for leap years of the Gregorian calendar.",
     "def is_leap_year(year):\n    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)",
     ["assert is_leap_year(2024) is True", "assert is_leap_year(1900) is False", "assert is_leap_year(2000) is True", "assert is_leap_year(2023) is False"]),
    ("code-misc-007", ["misc"], "Write a Python function `pascal_row(n)` that returns row n of Pascal's triangle as a list (row 0 is [1]).",
     "def pascal_row(n):\n    row = [1]\n    for _ in range(n):\n        row = [a + b for a, b in zip([0] + row, row + [0])]\n    return row",
     ["assert pascal_row(0) == [1]", "assert pascal_row(4) == [1, 4, 6, 4, 1]", "assert pascal_row(10)[5] == 252"]),
    ("code-misc-008", ["misc"], "Write a Python function `matrix_multiply(a, b)` that multiplies two matrices given as lists of lists.",
     "def matrix_multiply(a, b):\n    return [[sum(x * y for x, y in zip(row, col)) for col in zip(*b)] for row in a]",
     ["assert matrix_multiply([[1, 2], [3, 4]], [[5, 6], [7, 8]]) == [[19, 22], [43, 50]]", "assert matrix_multiply([[2]], [[3]]) == [[6]]",
      "assert matrix_multiply([[1, 0, 0]], [[1], [2], [3]]) == [[1]]"]),
]


def code_items() -> list[dict]:
    items, seen = [], set()
    for item_id, tags, prompt, solution, tests in CODE:
        assert item_id not in seen, item_id
        seen.add(item_id)
        namespace: dict = {}
        exec(solution, namespace)  # the reference must pass its own tests
        for test in tests:
            exec(test, namespace)
        items.append({"id": item_id, "prompt": prompt + " Answer with the code in a Python code block.",
                      "references": [f"```python\n{solution}\n```"], "tags": tags, "max_new_tokens": 320,
                      "checks": [{"type": "unit_tests", "tests": "\n".join(tests), "weight": 4}]})
    return items


HEADERS = {
    "tools": ("# Questions whose answers need computation: large arithmetic, roots, primes, dates, unit\n"
              "# conversions, string and list operations. Graded on the final answer (what the model says\n"
              "# outside its tool calls): numeric_answer compares the last number exactly (integers) or\n"
              "# within the item's tolerance; final_answer_contains matches words. Written by\n"
              "# scripts/make_tool_suites.py, which computes every answer.\n",
              "Questions that need computation, graded on the final answer; run with --tools python to let "
              "the model call the Python sandbox and compare accuracy with and without it."),
    "code": ("# Function-writing tasks graded by hidden unit tests run in the sandbox (pass@1 greedy, pass@k\n"
             "# with --samples). The answer's code is its first ```python block, else the whole answer.\n"
             "# Written by scripts/make_tool_suites.py, which checks every test against a reference solution.\n",
             "Write a Python function; graded by hidden unit tests run in the sandbox."),
}


def write(name: str, items: list[dict]) -> Path:
    header, description = HEADERS[name]
    doc = {"suite": name, "version": 1, "description": description, "items": items}
    path = SUITES / f"{name}.yaml"
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
    path.write_text(header + text, encoding="utf-8")
    return path


def main() -> None:
    for name, items in (("tools", tools_items()), ("code", code_items())):
        path = write(name, items)
        print(f"{path}: {len(items)} items")


if __name__ == "__main__":
    main()
