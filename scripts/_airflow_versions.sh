# The Airflow versions this provider is tested on (sourced by the scripts that need them).
# Each has its constraints file, constraints/airflow-<version>-py<python>.txt.
NEWEST_AIRFLOW=3.3.2
LOWEST_AIRFLOW=3.1.8
