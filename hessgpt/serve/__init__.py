"""``hessgpt serve``: an OpenAI-compatible HTTP server over the engine, and a web chat page.

- ``scheduler``: one thread owns the engine and runs a continuous batch that requests join;
- ``protocol``: OpenAI request fields, checked, and the OpenAI error shape;
- ``responses``: usage, finish reasons, log-probability blocks, server-sent events;
- ``app``: the FastAPI routes; ``page.html``: the chat page served at ``/``.
"""

from hessgpt.serve.app import ServeOptions, create_app
from hessgpt.serve.protocol import Limits

__all__ = ["Limits", "ServeOptions", "create_app"]
