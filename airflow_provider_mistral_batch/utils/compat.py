"""Names that live in different modules on Airflow 3.1 and 3.3: one place to import them from.

Airflow 3.1 has no ``airflow.sdk.conf`` and keeps some task exceptions only in
``airflow.exceptions``; 3.3 has them in the task SDK (the old paths warn there).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.sdk import conf
    from airflow.sdk.exceptions import (
        AirflowFailException,
        AirflowSensorTimeout,
        AirflowTaskTimeout,
        TaskDeferred,
    )
else:
    try:
        from airflow.sdk import conf
    except ImportError:  # Airflow 3.1
        from airflow.configuration import conf
    try:
        from airflow.sdk.exceptions import (
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowTaskTimeout,
            TaskDeferred,
        )
    except ImportError:  # Airflow 3.1
        from airflow.exceptions import (
            AirflowFailException,
            AirflowSensorTimeout,
            AirflowTaskTimeout,
            TaskDeferred,
        )

__all__ = [
    "AirflowFailException",
    "AirflowSensorTimeout",
    "AirflowTaskTimeout",
    "TaskDeferred",
    "conf",
]
