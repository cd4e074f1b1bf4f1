"""From checked options and an input to the task's jobs: read the input (sharded if needed),
look up given files, and for each part reattach to an earlier try's job or upload and create
a new one; the job's settings go into the fingerprint of the task's reattach key.

The reattach key and the choice among duplicates are :mod:`.identity`'s part.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow_provider_mistral_batch.exceptions import (
    MistralAPIError,
    MistralBatchInputError,
    MistralNotFoundError,
    MistralValidationError,
    describe_error,
    refused_job_error,
)
from airflow_provider_mistral_batch.models import SHARD_METADATA, BatchJob, FilePurpose
from airflow_provider_mistral_batch.utils.wording import plural

if TYPE_CHECKING:
    from airflow_provider_mistral_batch.batch.input import (
        FileInput,
        InlineInput,
        PreparedInput,
        UploadedInput,
    )
    from airflow_provider_mistral_batch.batch.submit_options import SubmitOptions
    from airflow_provider_mistral_batch.hooks.mistral_batch import MistralBatchHook


def prepare_input(
    options: SubmitOptions,
    value: Any,
    *,
    assign_custom_ids: bool,
    max_requests_per_job: int | None,
    inline: bool,
) -> PreparedInput:
    """Read and check the input (``options.input_field``'s rendered ``value``) in one pass,
    sharded if one job cannot take it.

    :param inline: a few requests may go inline in the create request (else always a file).

    With a structured ``options.output``, each request body without a ``response_format``
    gets the output's (see :func:`..input.prepare_requests`).
    """
    from airflow_provider_mistral_batch.batch.input import (
        prepare_file,
        prepare_file_ids,
        prepare_requests,
    )

    endpoint = str(options.endpoint)
    if options.input_field == "input_files":
        # Uploaded files are sent as they are: no response_format can be added to them.
        return prepare_file_ids(value, endpoint=endpoint, model=options.model)
    # Only chat completions take it; the options refused output_type for other endpoints.
    response_format = options.output.response_format()
    if options.input_field == "requests":
        return prepare_requests(
            value,
            endpoint=endpoint,
            model=options.model,
            assign_custom_ids=assign_custom_ids,
            max_requests_per_job=max_requests_per_job,
            inline=inline,
            response_format=response_format,
        )
    return prepare_file(
        value,
        endpoint=endpoint,
        model=options.model,
        assign_custom_ids=assign_custom_ids,
        max_requests_per_job=max_requests_per_job,
        response_format=response_format,
    )


def log_output_directive(log: Any, options: SubmitOptions, prepared: PreparedInput) -> None:
    """Say once what a structured ``output_type`` added to the requests: the directive, the
    requests that kept their own, or, for uploaded files, that none could be added."""
    from airflow_provider_mistral_batch.batch.input import UploadedInput

    output = options.output
    if not output.structured:
        return
    if isinstance(prepared, UploadedInput):
        log.warning(
            "input_files are sent as uploaded: their requests do not get the response_format "
            "of output_type %s (set it in the files, or give requests or input_path); the "
            "answers are still validated against it",
            output.schema_name,
        )
        return
    own = prepared.own_response_formats
    if own:
        log.info(
            "%s of %s requests set their own response_format, kept as given; the others ask "
            "for JSON of output_type %s. Every answer is validated against output_type",
            f"{own:,}",
            f"{prepared.request_count:,}",
            output.schema_name,
        )
    else:
        log.info(
            "Each request asks for JSON of output_type %s (response_format json_schema)",
            output.schema_name,
        )


def check_input_files(hook: MistralBatchHook, file_ids: Sequence[str]) -> None:
    """Look each given file up before a job is made of it: an unknown, deleted or
    non-``batch`` file would only make a FAILED job on every try."""
    for position, file_id in enumerate(file_ids):
        try:
            found = hook.get_file(file_id)
        except (MistralNotFoundError, MistralValidationError) as exc:
            raise MistralBatchInputError(
                f"input_files[{position}] {file_id!r} cannot be used: {describe_error(exc)}"
            ) from None
        if found.deleted:
            raise MistralBatchInputError(f"input_files[{position}] {file_id!r} was deleted")
        if found.purpose != FilePurpose.BATCH:
            raise MistralBatchInputError(
                f"input_files[{position}] {file_id!r} has purpose {found.purpose!s}; a batch "
                "job needs files uploaded with purpose 'batch'"
            )


def submit_jobs(
    hook: MistralBatchHook,
    log: Any,
    identity: tuple[str, str, str, int],
    fingerprint: str,
    parts: Sequence[InlineInput | FileInput | UploadedInput],
    *,
    metadata: Mapping[str, str],
    reattach: bool,
    create: Callable[[InlineInput | FileInput | UploadedInput, dict[str, str]], BatchJob],
) -> tuple[list[BatchJob], list[str]]:
    """One job per part of a task's input: the one an earlier try made with the same key
    (when ``reattach``), else a new one from ``create(part, metadata)``.

    :return: the jobs and their task keys, in the parts' order.
    """
    from airflow_provider_mistral_batch.batch.identity import (
        find_job_to_reattach,
        task_keys,
        task_metadata,
    )

    count = len(parts)
    keys = task_keys(identity, fingerprint, count)
    jobs = []
    for index, (part, key) in enumerate(zip(parts, keys, strict=True), start=1):
        shard = f" (shard {index} of {count})" if count > 1 else ""
        job = find_job_to_reattach(hook, key, log) if reattach else None
        if job is not None:
            log.info(
                "Reattaching to Mistral batch job %s (status %s) created by an earlier try%s",
                job.id,
                job.status,
                shard,
            )
        else:
            tags = {**metadata, **task_metadata(identity, key)}
            if count > 1:
                tags[SHARD_METADATA] = f"{index}/{count}"
            job = create(part, tags)
        jobs.append(job)
    return jobs, keys


def create_job(
    hook: MistralBatchHook,
    log: Any,
    options: SubmitOptions,
    prepared: InlineInput | FileInput | UploadedInput,
    metadata: dict[str, str],
) -> BatchJob:
    """Create the job of one input (uploading it first when it is a file to upload)."""
    from airflow_provider_mistral_batch.batch.identity import duplicate_chooser
    from airflow_provider_mistral_batch.batch.input import InlineInput, UploadedInput

    common: dict[str, Any] = {
        **options.job_kwargs,
        "endpoint": str(options.endpoint),
        "model": options.model,
        "metadata": metadata,
        "timeout_hours": options.timeout_hours,
    }
    file_id = None
    if isinstance(prepared, InlineInput):
        log.info("Creating a batch job with %s", plural(prepared.request_count, "inline request"))
        source: dict[str, Any] = {"requests": prepared.requests}
    elif isinstance(prepared, UploadedInput):
        source = {"input_files": prepared.file_ids}
    else:
        file_id = _upload(hook, log, prepared)
        source = {"input_files": [file_id]}
    try:
        # A retried create that finds several jobs of its key keeps one by the duplicate rule.
        return hook.create_batch_job(**source, **common, choose=duplicate_chooser(hook, log))
    except MistralAPIError as exc:
        # Refused for good, and no earlier attempt may have made a job from it: the upload
        # is of no more use. After an ambiguous attempt (the error carries a note), a job
        # may use the file, so it stays.
        refused = exc.status_code < 500 and exc.status_code != 429 and exc.note is None
        if file_id is not None and refused:
            _delete_quietly(hook, log, file_id)
        error = refused_job_error(exc)
        if error is exc:
            raise
        raise error from exc


def _upload(hook: MistralBatchHook, log: Any, prepared: FileInput) -> str:
    log.info(
        "Uploading %s (%s, %s)",
        prepared.filename,
        plural(prepared.request_count, "request"),
        plural(prepared.size, "byte"),
    )
    try:
        return hook.upload_file(prepared.path, filename=prepared.filename).id
    except MistralAPIError as exc:
        if exc.status_code == 413:
            # The API refuses the file for its size: every retry would upload it again.
            raise MistralBatchInputError(
                f"{prepared.filename} ({prepared.size:,} bytes) is too large for the Files API: "
                f"{describe_error(exc)}; set the operator's max_requests_per_job (a class "
                "attribute) to split the input into smaller jobs"
            ) from exc
        raise


def _delete_quietly(hook: MistralBatchHook, log: Any, file_id: str) -> None:
    try:
        hook.delete_file(file_id)
    except Exception as exc:
        log.warning("Could not delete uploaded file %s: %s", file_id, exc)
    else:
        log.info("Deleted uploaded file %s: no job was created from it", file_id)
