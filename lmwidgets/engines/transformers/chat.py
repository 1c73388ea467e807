"""Turning chat messages into the exact text and token ids a model receives."""

from __future__ import annotations

from typing import Any

from lmwidgets.errors import PromptError

Message = dict[str, Any]


def _merge_system(messages: list[Message]) -> list[Message]:
    """Fold a system message into the first user turn (for templates without a system role)."""
    if not messages or messages[0]["role"] != "system":
        return messages
    system, rest = messages[0]["content"], list(messages[1:])
    if rest and rest[0]["role"] == "user":
        content = rest[0]["content"]
        if isinstance(content, list):  # a content list (images and text)
            texts = system if isinstance(system, list) else [{"type": "text", "text": system}]
            merged = [*texts, {"type": "text", "text": "\n\n"}, *content]
        else:
            merged = f"{system}\n\n{content}"
        rest[0] = {**rest[0], "content": merged}
    else:
        rest.insert(0, {"role": "user", "content": system})
    return rest


def plain_text(messages: list[Message]) -> str:
    """Messages as plain text for models without a chat template: contents joined by blank lines."""
    return "\n\n".join(str(message["content"]) for message in messages)


def render_text(tokenizer: Any, messages: list[Message]) -> str:
    """The exact prompt text: the chat template with a generation prompt, or plain text.

    ``tokenizer`` may also be a multimodal processor (it renders content lists with images).
    """
    if not messages:
        raise PromptError("The prompt is empty: write the prompt in the cell body.")
    if not getattr(tokenizer, "chat_template", None):
        return plain_text(messages)
    try:
        return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except Exception as first:  # jinja2 TemplateError and friends; templates raise freely
        merged = _merge_system(messages)
        if merged is not messages:
            try:
                return tokenizer.apply_chat_template(
                    merged, add_generation_prompt=True, tokenize=False
                )
            except Exception:
                pass
        raise PromptError(
            f"The model's chat template rejected the prompt: {first}. "
            "Check the roles (system/user/assistant alternate) or drop --system."
        ) from first


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text``; templated text already holds its special tokens."""
    templated = bool(getattr(tokenizer, "chat_template", None))
    return list(tokenizer(text, add_special_tokens=not templated)["input_ids"])
