"""Deterministic, plausibly shaped fake response bodies for every batch endpoint."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from airflow_provider_mistral_batch.models import ApiEndpoint
from mistral_batch_emulator.catalog import unknown_model_message
from mistral_batch_emulator.config import BrokenOutput
from mistral_batch_emulator.errors import INVALID_MODEL
from mistral_batch_emulator.rejections import RequestRejected
from mistral_batch_emulator.structured_answers import (
    TEXT,
    AnswerFormat,
    answer_format,
    completion_tokens,
    shaped_text,
)

_TEXT = (
    "the quick brown fox jumps over a lazy dog while cheese ages slowly in cool cellars "
    "and wine breathes near an open window under a bright morning sky every answer "
    "depends on careful reading of the question before writing"
)
_WORDS = tuple(_TEXT.split())
_EMBEDDING_DIM = 8
_MODERATION_CATEGORIES = (
    "sexual",
    "hate_and_discrimination",
    "violence_and_threats",
    "dangerous_and_criminal_content",
    "selfharm",
    "health",
    "financial",
    "law",
    "pii",
)


class _Request:
    """One request being answered: its body, model, seeded randomness and size.

    :param broken: how to break the answer's text (``broken_output_custom_ids``), or None.
    """

    def __init__(
        self,
        body: dict[str, Any],
        custom_id: str | None,
        model: str,
        created: int,
        broken: BrokenOutput | None = None,
    ) -> None:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        digest = hashlib.blake2b(f"{custom_id}\x00{canonical}".encode(), digest_size=16).digest()
        self.body = body
        self.model = model
        self.created = created
        self.hex = digest.hex()
        self.rng = random.Random(int.from_bytes(digest[:8], "big"))
        self.prompt_tokens = max(1, len(canonical) // 4)
        self.broken = broken

    def text(self, max_words: int) -> tuple[str, int]:
        """A sentence of at most ``max_words`` words, and its token count."""
        count = self.rng.randint(max(1, min(4, max_words)), max(1, max_words))
        words = self.rng.choices(_WORDS, k=count)
        return " ".join(words).capitalize() + ".", count

    def answer(self, fmt: AnswerFormat) -> tuple[str, int, bool]:
        """The answer's text as ``fmt`` asks, its token count, and whether ``max_tokens`` cut
        it short (plain text only: a JSON answer is never cut, so it stays valid)."""
        if fmt.kind == "text" and self.broken is None:
            content, tokens = self.text(self.max_words())
            return content, tokens, tokens >= self.max_words() and "max_tokens" in self.body
        content = shaped_text(fmt, self.rng, _WORDS, self.broken)
        return content, completion_tokens(content), False

    def max_words(self) -> int:
        max_tokens = self.body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens > 0:
            return min(max_tokens, 24)
        return 24

    def usage(self, completion_tokens: int) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        }


def _require_list(body: dict[str, Any], key: str, of: type | tuple[type, ...]) -> list[Any]:
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise RequestRejected(f"body.{key}: expected a non-empty list", param=key)
    if not all(isinstance(item, of) for item in value):
        raise RequestRejected(f"body.{key}: every item must be a {_type_name(of)}", param=key)
    return value


def _require_inputs(body: dict[str, Any], key: str) -> list[Any]:
    value = body.get(key)
    if isinstance(value, str) and value:
        return [value]
    if isinstance(value, list) and value:
        return value
    raise RequestRejected(f"body.{key}: expected a non-empty string or a non-empty list", param=key)


def _type_name(of: type | tuple[type, ...]) -> str:
    if isinstance(of, tuple):
        return " or ".join(item.__name__ for item in of)
    return of.__name__


def _check_messages(body: dict[str, Any], key: str = "messages") -> list[dict[str, Any]]:
    messages = _require_list(body, key, dict)
    for index, message in enumerate(messages):
        if "role" not in message:
            raise RequestRejected(f"body.{key}[{index}]: missing 'role'", param=key)
    return messages


def _completion(req: _Request, object_name: str, fmt: AnswerFormat = TEXT) -> dict[str, Any]:
    content, tokens, cut = req.answer(fmt)
    finish = "length" if cut else "stop"
    return {
        "id": f"cmpl-{req.hex}",
        "object": object_name,
        "model": req.model,
        "created": req.created,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "tool_calls": None},
                "finish_reason": finish,
            }
        ],
        "usage": req.usage(tokens),
    }


def _chat(req: _Request) -> dict[str, Any]:
    _check_messages(req.body)
    fmt = answer_format(req.body.get("response_format"), "body.response_format")
    return _completion(req, "chat.completion", fmt)


def _fim(req: _Request) -> dict[str, Any]:
    if not isinstance(req.body.get("prompt"), str):
        raise RequestRejected("body.prompt: expected a string", param="prompt")
    return _completion(req, "chat.completion")


def _embeddings(req: _Request) -> dict[str, Any]:
    inputs = _require_inputs(req.body, "input")
    data = []
    for index in range(len(inputs)):
        vector = [req.rng.uniform(-1.0, 1.0) for _ in range(_EMBEDDING_DIM)]
        norm = sum(value * value for value in vector) ** 0.5 or 1.0
        embedding = [round(value / norm, 6) for value in vector]
        data.append({"object": "embedding", "embedding": embedding, "index": index})
    return {
        "id": f"emb-{req.hex}",
        "object": "list",
        "model": req.model,
        "data": data,
        "usage": {"prompt_tokens": req.prompt_tokens, "total_tokens": req.prompt_tokens},
    }


def _moderation_result(req: _Request) -> dict[str, Any]:
    scores = {name: round(req.rng.random() * 0.2, 6) for name in _MODERATION_CATEGORIES}
    flagged = req.rng.choice(_MODERATION_CATEGORIES) if req.rng.random() < 0.1 else None
    if flagged is not None:
        scores[flagged] = round(0.8 + req.rng.random() * 0.2, 6)
    return {
        "categories": {name: score >= 0.5 for name, score in scores.items()},
        "category_scores": scores,
    }


def _moderations(req: _Request) -> dict[str, Any]:
    inputs = _require_inputs(req.body, "input")
    return {
        "id": f"mod-{req.hex}",
        "model": req.model,
        "results": [_moderation_result(req) for _ in inputs],
        "usage": req.usage(0),
    }


def _chat_moderations(req: _Request) -> dict[str, Any]:
    conversations = _require_list(req.body, "input", (dict, list))
    return {
        "id": f"mod-{req.hex}",
        "model": req.model,
        "results": [_moderation_result(req) for _ in conversations],
        "usage": req.usage(0),
    }


def _ocr(req: _Request) -> dict[str, Any]:
    document = req.body.get("document")
    if not isinstance(document, dict):
        raise RequestRejected("body.document: expected an object", param="document")
    pages = []
    for index in range(req.rng.randint(1, 3)):
        text, _ = req.text(16)
        pages.append(
            {
                "index": index,
                "markdown": f"# Page {index + 1}\n\n{text}",
                "images": [],
                "dimensions": {"dpi": 200, "height": 2200, "width": 1700},
            }
        )
    return {
        "pages": pages,
        "model": req.model,
        "document_annotation": None,
        "usage_info": {"pages_processed": len(pages), "doc_size_bytes": None},
    }


def _classification_result(req: _Request) -> dict[str, Any]:
    raw = [req.rng.random() + 0.01 for _ in range(3)]
    total = sum(raw)
    labels = ("positive", "neutral", "negative")
    return {
        "sentiment": {"scores": {k: round(v / total, 6) for k, v in zip(labels, raw, strict=True)}}
    }


def _classifications(req: _Request) -> dict[str, Any]:
    inputs = _require_inputs(req.body, "input")
    return {
        "id": f"cls-{req.hex}",
        "model": req.model,
        "results": [_classification_result(req) for _ in inputs],
    }


def _chat_classifications(req: _Request) -> dict[str, Any]:
    value = req.body.get("input")
    if isinstance(value, dict):
        items: list[Any] = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise RequestRejected(
            "body.input: expected a conversation object or a non-empty list", param="input"
        )
    return {
        "id": f"cls-{req.hex}",
        "model": req.model,
        "results": [_classification_result(req) for _ in items],
    }


def _conversations(req: _Request) -> dict[str, Any]:
    _require_inputs(req.body, "inputs")
    args = req.body.get("completion_args")
    if args is not None and not isinstance(args, dict):
        raise RequestRejected("body.completion_args: expected an object", param="completion_args")
    where = "body.completion_args.response_format"
    fmt = answer_format((args or {}).get("response_format"), where)
    content, tokens, _ = req.answer(fmt)
    stamp = datetime.fromtimestamp(req.created, UTC).isoformat()
    return {
        "object": "conversation.response",
        "conversation_id": f"conv_{req.hex}",
        "outputs": [
            {
                "object": "entry",
                "type": "message.output",
                "id": f"msg_{req.hex}",
                "created_at": stamp,
                "completed_at": stamp,
                "model": req.model,
                "role": "assistant",
                "content": content,
            }
        ],
        "usage": req.usage(tokens),
    }


def _transcription(req: _Request) -> dict[str, Any]:
    if not any(isinstance(req.body.get(key), str) for key in ("file_url", "file_id", "file")):
        raise RequestRejected(
            "body: one of file_url, file_id or file is required", param="file_url"
        )
    segments: list[dict[str, Any]] = []
    texts: list[str] = []
    start = 0.0
    for _ in range(req.rng.randint(1, 3)):
        piece, _ = req.text(10)
        end = round(start + req.rng.uniform(1.0, 5.0), 2)
        segments.append({"start": start, "end": end, "text": piece})
        texts.append(piece)
        start = end
    text = " ".join(texts)
    completion = len(text.split())
    return {
        "model": req.model,
        "text": text,
        "language": req.body.get("language") or "en",
        "segments": segments,
        "usage": {
            "prompt_audio_seconds": int(start) + 1,
            "prompt_tokens": req.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": req.prompt_tokens + completion,
        },
    }


_HANDLERS: dict[ApiEndpoint, Callable[[_Request], dict[str, Any]]] = {
    ApiEndpoint.CHAT_COMPLETIONS: _chat,
    ApiEndpoint.EMBEDDINGS: _embeddings,
    ApiEndpoint.FIM_COMPLETIONS: _fim,
    ApiEndpoint.MODERATIONS: _moderations,
    ApiEndpoint.CHAT_MODERATIONS: _chat_moderations,
    ApiEndpoint.OCR: _ocr,
    ApiEndpoint.CLASSIFICATIONS: _classifications,
    ApiEndpoint.CHAT_CLASSIFICATIONS: _chat_classifications,
    ApiEndpoint.CONVERSATIONS: _conversations,
    ApiEndpoint.AUDIO_TRANSCRIPTIONS: _transcription,
}


def fake_response(
    endpoint: ApiEndpoint,
    body: dict[str, Any],
    *,
    custom_id: str | None,
    job_model: str | None,
    job_agent_id: str | None,
    created: int,
    known_models: frozenset[str] | None,
    broken: BrokenOutput | None = None,
) -> dict[str, Any]:
    """The response body ``endpoint`` would give to ``body``, seeded by custom_id and body.

    Chat completions (``response_format``) and conversations
    (``completion_args.response_format``) answer text, a JSON object or JSON valid against
    the schema given, as asked.

    :param known_models: the model names accepted; None accepts any.
    :param broken: break the answer's text on purpose (chat and FIM completions,
        conversations): ``not_json`` or ``wrong_shape``; None answers normally.
    :raises RequestRejected: when the body cannot be served (missing field, no model, a
        model not in ``known_models``).
    """
    handler = _HANDLERS.get(endpoint)
    if handler is None:
        raise RequestRejected(f"endpoint {endpoint} is not supported", param="endpoint")
    body_model = body.get("model")
    if body_model is not None and not isinstance(body_model, str):
        raise RequestRejected("body.model: expected a string", param="model")
    model = body_model or job_model
    if model is None:
        if job_agent_id is None and body.get("agent_id") is None:
            raise RequestRejected(
                "no model: set model on the job or in the request body", param="model"
            )
        model = "agent"
    elif known_models is not None and model not in known_models:
        raise RequestRejected(
            unknown_model_message(model, known_models),
            param="model",
            code="invalid_model",
            kind=INVALID_MODEL,
        )
    return handler(_Request(body, custom_id, model, created, broken))


__all__ = ["RequestRejected", "fake_response"]
