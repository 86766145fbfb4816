"""An Airflow DAG that retrains a growthrec model store every night, after the export lands.

Copy into Airflow's ``dags/`` folder and set the two paths. ``growthrec retrain`` is idempotent
(the same export twice writes nothing), so Airflow's retries and backfills are safe. Its exit
status tells the task what happened:

- 0: a decision was recorded: ``promoted``, ``rejected`` (the challenger was not better),
  ``refused`` (the export failed a data guardrail) or ``unchanged`` (seen before). The task
  succeeds; the decision is pushed to XCom, and ``alert_if_refused`` fails loudly on a refused
  export, which someone should look at, while the champion keeps serving.
- 1: an error (unreadable export, damaged store): the task fails and Airflow retries.
- 75: another retrain holds the store's lock: retried like a failure.
"""

from __future__ import annotations

import json
import subprocess
from datetime import datetime, timedelta

from airflow.decorators import dag, task
from airflow.exceptions import AirflowFailException

STORE = "/srv/growthrec/store"
EXPORT = "/srv/exports/transactions.parquet"


@dag(
    schedule="30 2 * * *",
    start_date=datetime(2025, 1, 1),
    catchup=False,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=10)},
    tags=["growthrec"],
)
def growthrec_retrain():
    @task
    def retrain() -> dict:
        """Run 'growthrec retrain'; the decision as a dict (an error raises and retries)."""
        result = subprocess.run(
            ["growthrec", "retrain", "--store", STORE, "--data", EXPORT, "--wait", "600", "--json"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"growthrec retrain exited {result.returncode}: {result.stderr}")
        return json.loads(result.stdout)

    @task
    def alert_if_refused(decision: dict) -> str:
        """A refused export is worth a person's look; promoted and rejected are routine."""
        if decision["outcome"] == "refused":
            raise AirflowFailException(f"export refused, champion kept: {decision['reason']}")
        return f"{decision['outcome']}: {decision['reason']}"

    alert_if_refused(retrain())


growthrec_retrain()
