"""The one error type for user-facing failures.

The CLI prints it as a single line (``error: ...``) and exits with code 2;
anything else that escapes is a bug and keeps its traceback.
"""


class HessError(Exception):
    """A failure caused by the user's input: a file, a field, a flag."""
