"""Which tokens carry an assistant's answer, for scoring it with a model's own tokenizer."""

from __future__ import annotations

from typing import Any


def continuation_ids(template: Any, messages: list[dict], prompt_ids: list[int],
                     text: str) -> tuple[list[int], int] | None:
    """(ids, their bytes) of ``text`` as the assistant's answer to ``messages``: the tokens the template
    marks as the assistant's, without the end-of-turn tokens; None when it tokenises to nothing."""
    tok = template.tokenizer
    full = template.render(messages + [{"role": "assistant", "content": text}], add_generation_prompt=False)
    if full.ids[:len(prompt_ids)] == prompt_ids:
        tail = zip(full.ids[len(prompt_ids):], full.assistant_mask[len(prompt_ids):], strict=True)
        end_ids = set(template.end_of_turn_ids)
        continuation = [t for t, m in tail if m and t not in end_ids]
    else:  # a template whose prompt is not a prefix of the answered conversation
        continuation = tok.encode(text)
    if not continuation:
        return None
    return continuation, sum(len(tok.token_bytes(t)) for t in continuation)
