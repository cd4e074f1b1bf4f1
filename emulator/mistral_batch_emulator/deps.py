"""Small helpers every route module shares: state and caller dependencies, replies, enums."""

from __future__ import annotations

from collections.abc import Sequence
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
    allowed: type[OpenStrEnum] | Sequence[str], values: list[str] | None, loc: tuple[str, ...]
) -> frozenset[str] | None:
    """The values as a set, or a 422 when one is not allowed.

    :param allowed: the accepted values, or an enum whose declared members are the accepted
        values (the pseudo-members an open enum makes for unknown values never count).
    """
    if values is None:
        return None
    accepted = [str(item) for item in allowed]  # a StrEnum member's str is its value
    for index, value in enumerate(values):
        if value not in accepted:
            # pydantic's wording: "Input should be 'a', 'b' or 'c'".
            *others, last = [repr(item) for item in accepted]
            expected = f"{', '.join(others)} or {last}" if others else last
            loc_of_value: tuple[str | int, ...] = (*loc, index) if len(values) > 1 else loc
            raise invalid(
                loc_of_value,
                f"Input should be {expected}",
                value,
                "enum",
                ctx={"expected": expected},
            )
    return frozenset(values)


__all__ = ["Caller", "State", "get_caller", "get_state", "known_values", "reply"]
