"""Budgets for rendering untrusted jinja2 templates: time, output size, and the size of any one value.

jinja2's sandbox stops a template from reaching Python internals, but not from looping for hours
(``range`` is capped per loop, not for nested loops) or from asking for ``'a' * 10**11``. Three limits
close that:

- time: a trace function, active only while a render runs and only in template code, checks a
  deadline at every line the template executes (loops included);
- values: ``*`` and ``**``, every call and every filter are checked before they run, so a string,
  list or number too large to be a prompt is refused before it is allocated;
- output: the rendered text is gathered piece by piece and stops past the size budget.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from functools import wraps
from typing import Any

from jinja2 import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from hessgpt.errors import HessError

RENDER_SECONDS = 2.0  # a real chat template renders in milliseconds
MAX_OUTPUT_CHARS = 1_000_000  # template text, on top of the messages' own contents
MAX_INT_ARGUMENT = MAX_OUTPUT_CHARS  # widths, counts, repeat factors: nothing larger is a prompt's
_TEMPLATE_FILENAME = "<template>"


class BudgetExceeded(TemplateError):
    """A render went over one of its budgets."""


def _check_size(value: Any, what: str) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARGUMENT:
        raise BudgetExceeded(f"{what}: number {value} exceeds the template limit of {MAX_INT_ARGUMENT}")


def _check_arguments(args: tuple, kwargs: dict, what: str) -> None:
    for value in (*args, *kwargs.values()):
        _check_size(value, what)


def _sized(value: Any) -> bool:
    return isinstance(value, (str, list, tuple, bytes))


class BudgetedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with ``*``, ``**``, calls and filters checked before they run."""

    intercepted_binops = frozenset({"*", "**"})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filters = {name: _budgeted_filter(name, func) for name, func in self.filters.items()}

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            sized, count = (left, right) if _sized(left) else (right, left)
            if _sized(sized) and isinstance(count, int) and len(sized) * max(count, 0) > MAX_OUTPUT_CHARS:
                raise BudgetExceeded(f"'*' would build {len(sized) * count} items, over the template limit "
                                     f"of {MAX_OUTPUT_CHARS}")
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64 \
                and isinstance(left, (int, float)) and abs(left) > 1:
            raise BudgetExceeded(f"'**' exponent {right} is over the template limit of 64")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (jinja2's signature)
        _check_arguments(args, kwargs, "call")
        return super().call(__context, __obj, *args, **kwargs)


def _budgeted_filter(name: str, func: Callable) -> Callable:
    # The filtered value comes first, after the context or environment some filters ask for.
    skip = 2 if hasattr(func, "jinja_pass_arg") else 1

    @wraps(func)  # keeps jinja_pass_arg, so jinja2 still passes the context or environment
    def checked(*args: Any, **kwargs: Any) -> Any:
        _check_arguments(args[skip:], kwargs, f"filter '{name}'")
        return func(*args, **kwargs)

    return checked


def render_within_budget(template: Any, variables: dict[str, Any], origin: str, extra_chars: int = 0) -> str:
    """Render ``template`` with ``variables``; any budget overrun or template error is a HessError
    naming ``origin`` (the file the template came from)."""
    limit = MAX_OUTPUT_CHARS + extra_chars
    deadline = time.monotonic() + RENDER_SECONDS

    def line_tracer(frame: Any, event: str, arg: Any) -> Any:
        if event == "line" and time.monotonic() > deadline:
            raise BudgetExceeded(f"rendering took over {RENDER_SECONDS:g} s (time limit)")
        return line_tracer

    def call_tracer(frame: Any, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename == _TEMPLATE_FILENAME:
            return line_tracer
        return None

    pieces: list[str] = []
    size = 0
    previous = sys.gettrace()
    sys.settrace(call_tracer)
    try:
        for piece in template.generate(**variables):
            size += len(piece)
            if size > limit:
                raise BudgetExceeded(f"output exceeds the template limit of {limit} characters")
            pieces.append(piece)
    except BudgetExceeded as exc:
        raise HessError(f"{origin}: chat template over budget: {exc}") from None
    except TemplateError as exc:
        raise HessError(f"{origin}: chat template: rendering failed ({str(exc)[:200]})") from None
    except (RecursionError, MemoryError, OverflowError, ArithmeticError, TypeError, ValueError) as exc:
        raise HessError(f"{origin}: chat template: rendering failed ({type(exc).__name__}: "
                        f"{str(exc)[:160]})") from None
    finally:
        sys.settrace(previous)
    return "".join(pieces)
