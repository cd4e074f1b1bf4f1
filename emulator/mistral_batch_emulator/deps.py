"""Small helpers every route module shares: state and caller dependencies, replies, enums."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from airflow_provider_mistral_batch.models import OpenStrEnum
from mistral_batch_emulator.auth import bearer_token, caller_id
from mistral_batch_emulator.errors import invalid
from mistral_batch_emulator.state import EmulatorState


def get_state(request: Request) -> EmulatorState:
    """The emulator state of the app serving this request."""
    state: EmulatorState = request.app.state.emulator
    return state


State = Annotated[EmulatorState, Depends(get_state)]


def get_caller(request: Request) -> str | None:
    """The id of the API key this request carries (the middleware has already checked it)."""
    token = bearer_token(request.headers.get("authorization", ""))
    return caller_id(token) if token is not None else None


Caller = Annotated[str | None, Depends(get_caller)]


def reply(model: BaseModel) -> JSONResponse:
    """A 200 JSON response of a model, nulls included (the contract has nullable fields)."""
    return JSONResponse(model.model_dump(mode="json"))


def known_values(
    enum: type[OpenStrEnum], values: list[str] | None, loc: tuple[str, ...]
) -> frozenset[str] | None:
    """The values as a set, or a 422 when one is not a member the contract declares."""
    if values is None:
        return None
    allowed = [member.value for member in enum]
    for index, value in enumerate(values):
        if value not in allowed:
            expected = ", ".join(repr(item) for item in allowed)
            loc_of_value: tuple[str | int, ...] = (*loc, index) if len(values) > 1 else loc
            raise invalid(loc_of_value, f"Input should be {expected}", value, "enum")
    return frozenset(values)


__all__ = ["Caller", "State", "get_caller", "get_state", "known_values", "reply"]
