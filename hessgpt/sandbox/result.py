"""What a sandboxed run returns."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one run.

    ``exit_reason`` is one of:

    - ``"ok"``: the program finished (or called ``sys.exit(0)``);
    - ``"error"``: it raised an exception or exited with a non-zero status (``detail`` holds the last
      traceback line, ``stderr`` the traceback);
    - ``"timeout"``: it ran past its wall-clock or CPU time and was killed;
    - ``"memory"``: it ran out of its memory allowance (``MemoryError``);
    - ``"output_limit"``: it printed more than the cap on stdout or stderr and was killed (the output
      kept is truncated, with a note);
    - ``"forbidden"``: it tried something the sandbox refuses (an import outside the whitelist, a
      file, a socket, a process, a refused system call);
    - ``"killed"``: it died from a signal (a crash, or it killed itself).

    ``peak_mb`` is the run process's peak resident memory, the preloaded interpreter included.
    ``unsafe`` marks runs made without the operating-system jail (rlimits and the import guard only).
    """

    stdout: str
    stderr: str
    exit_reason: str
    wall_s: float
    peak_mb: float
    detail: str = ""
    unsafe: bool = False

    @property
    def ok(self) -> bool:
        return self.exit_reason == "ok"

    def summary(self) -> str:
        """One line: the verdict, its reason, time and memory."""
        reason = f": {self.detail}" if self.detail else ""
        flag = " [UNSAFE: no OS isolation]" if self.unsafe else ""
        return f"{self.exit_reason}{reason} ({self.wall_s:.3f}s, {self.peak_mb:.0f} MB peak){flag}"
