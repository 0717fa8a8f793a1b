"""Beyond the portal: a real engine reads a published snapshot unchanged. Apache Spark
(pyspark, in local mode on loopback) reads the local layout by Hive partition discovery, and
its row count per table and sponsor is the manifest's."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyspark import SparkContext
from pyspark.sql import SparkSession

from warehouse import layout


@pytest.fixture(scope="module")
def spark(tmp_path_factory) -> Iterator[SparkSession]:
    session = (
        SparkSession.builder.master("local[1]")
        .appName("sponsor-portal-tests")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.local.dir", str(tmp_path_factory.mktemp("spark")))
        .getOrCreate()
    )
    yield session
    session.stop()
    # The JVM would otherwise live (and take CPU) until the test run ends: stop it now.
    gateway = SparkContext._gateway
    gateway.shutdown()
    gateway.proc.terminate()
    gateway.proc.wait(timeout=30)
    SparkContext._gateway = SparkContext._jvm = None


def test_spark_reads_every_table_of_a_snapshot_with_the_manifests_counts(spark, demo_warehouse):
    snapshot = layout.current_snapshot(demo_warehouse)
    manifest = json.loads((snapshot / "manifest.json").read_text())
    checked = 0
    for table, facts in manifest["tables"].items():
        expected = {sponsor: rows for sponsor, rows in facts["published_rows"].items() if rows}
        if not expected:
            continue
        frame = spark.read.parquet(str(Path(snapshot) / table))
        counted = {row["sponsor_id"]: row["count"]
                   for row in frame.groupBy("sponsor_id").count().collect()}  # fmt: skip
        assert counted == expected, table
        checked += 1
    assert checked >= 10  # every table the demo plant fills
