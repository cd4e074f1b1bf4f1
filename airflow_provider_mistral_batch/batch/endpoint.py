"""The API endpoint of a batch job's requests: a known one, or a new one of the right form.

A DAG file loads this module (a plain endpoint is checked when the DAG is parsed), so it stays
small.
"""

from __future__ import annotations

from typing import Any, Final

from airflow_provider_mistral_batch.exceptions import MistralBatchInputError
from airflow_provider_mistral_batch.models import ApiEndpoint

#: The endpoints whose answers have a text (a completion's message): their rows carry it as
#: ``output`` by default, and only their answers can be checked against an output type.
TEXT_ENDPOINTS: Final = frozenset({ApiEndpoint.CHAT_COMPLETIONS, ApiEndpoint.FIM_COMPLETIONS})


def known_endpoints() -> str:
    """The endpoints this release knows, comma-separated, for messages."""
    return ", ".join(endpoint.value for endpoint in ApiEndpoint)


def closest_endpoint(endpoint: str) -> str:
    """`` (did you mean '/v1/...'?)`` for a near miss of a known endpoint, else nothing."""
    import difflib

    close = difflib.get_close_matches(endpoint, [e.value for e in ApiEndpoint], n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_endpoint(endpoint: str) -> ApiEndpoint:
    """The endpoint as an :class:`ApiEndpoint`: a known one, or an unknown one of the form
    ``/v1/<path>`` (a new endpoint needs no new release of this provider); refuse the rest."""
    value = ApiEndpoint(endpoint)
    if not value.is_known and not value.is_well_formed:
        raise MistralBatchInputError(
            f"endpoint {endpoint!r} is not an API endpoint of the form /v1/<path>"
            f"{closest_endpoint(endpoint)}; the known ones: {known_endpoints()}"
        )
    return value


def warn_if_unknown(endpoint: ApiEndpoint, log: Any) -> None:
    """Log a warning for an endpoint this release does not know (it is sent as given)."""
    if not endpoint.is_known:
        log.warning(
            "Endpoint %s is not one this provider release knows (%s); sending it as given%s",
            endpoint,
            known_endpoints(),
            closest_endpoint(endpoint),
        )
