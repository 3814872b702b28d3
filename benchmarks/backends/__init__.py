"""Backends: the one interface through which the bench reaches a model (see ``base``).

- ``local.LocalBackend``: a checkpoint run by the HessGPT engine;
- ``openai_http.OpenAIBackend``: any model behind an OpenAI-compatible endpoint (vLLM, llama.cpp
  server, ``hessgpt serve``);
- ``responses.ResponsesBackend``: answers produced elsewhere, read from a JSONL file.
"""
