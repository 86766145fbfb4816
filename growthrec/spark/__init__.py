"""Training on Spark: implicit ALS on transactions read where Spark can reach them.

``train_from_path`` reads CSV or Parquet paths (local, HDFS, S3, ... : whatever the session can
read) with Spark itself, applies growthrec's cleaning rules there (the same rules, in the same
order, with the same counts as ``growthrec.data.load_events``), maps the raw ids to
contiguous integers inside Spark, and fits ``pyspark.ml.recommendation.ALS(implicitPrefs=True)``.
Only what the model file holds comes back to the driver: both factor matrices, both id maps and the
training pairs (integer CSR, for excluding purchases). The result is an ordinary ``Model`` of
the ``spark`` backend, whose scoring needs numpy only (``growthrec.backends.spark``).

The event log never has to fit in one process; the model file's content does (on the driver):
``4 * factors`` bytes per customer and per item, 8 bytes per distinct (customer, item) pair
(16 with a time column) and the ids; about 120 bytes per pair at the peak, while the collected
pairs become the CSR matrix.

pyspark is optional (``pip install "growthrec[spark]"``) and imported only when a function here
runs, so importing growthrec, scoring a ``spark`` model or serving it needs no Spark.

Ids are mapped as growthrec maps them: integer ids (whole-number floats included) stay integers
and are ordered numerically, text ids are ordered by code point; index ``i`` is the ``i``-th
smallest id, so the id maps equal those of ``load_events`` on the same file and cleaning.
Differences from ``load_events``: a problem value is reported with the column and the value but
not the row (Spark has no row numbers); CSV types are inferred by Spark over the whole file (one
extra pass; Parquet needs none); times without a zone are read as UTC (as pyarrow does).
"""

from __future__ import annotations

from growthrec.backends._spark_als import (
    DEFAULT_MASTER,
    INSTALL_HINT,
    SESSION_DEFAULTS,
    fit_spark_als,
    import_pyspark,
    ratings_from_matrix,
    spark_session,
)
from growthrec.spark.reading import (
    LOAD_SQL_CONF,
    SparkLoadReport,
    SparkPairs,
    file_format_of,
    load_pairs,
    ratings_from_pairs,
)
from growthrec.spark.training import BACKEND, SparkTraining, spark_training, train_from_path

__all__ = [
    "BACKEND",
    "DEFAULT_MASTER",
    "INSTALL_HINT",
    "LOAD_SQL_CONF",
    "SESSION_DEFAULTS",
    "SparkLoadReport",
    "SparkPairs",
    "SparkTraining",
    "file_format_of",
    "fit_spark_als",
    "import_pyspark",
    "load_pairs",
    "ratings_from_matrix",
    "ratings_from_pairs",
    "spark_session",
    "spark_training",
    "train_from_path",
]
