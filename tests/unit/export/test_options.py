"""Every value `mloop export` writes into a generated file is checked first; a bad one is an ExportError
that names the option and says what is expected."""

from __future__ import annotations

import pytest

from mloop.errors import ExportError
from mloop.export import options


def refused(check: object, value: object, *args: object) -> str:
    """The message of the ExportError ``check(value, *args)`` raises."""
    with pytest.raises(ExportError) as caught:
        check(value, *args)  # type: ignore[operator]
    return caught.value.message


def test_none_presets_and_cron_expressions_are_accepted_with_whitespace_tidied() -> None:
    assert [options.schedule(v) for v in (None, "", "  ", "none", "None", " NONE ")] == [None] * 6  # triggered only
    assert options.schedule("@daily") == "@daily"
    assert options.schedule(" @hourly ") == "@hourly"
    assert all(options.schedule(p) == p for p in options.SCHEDULE_PRESETS)
    assert options.schedule("0  3 * *\t0") == "0 3 * * 0"
    assert options.schedule("*/15 9-17 * * mon-fri") == "*/15 9-17 * * mon-fri"


def test_a_bad_schedule_is_refused_with_what_would_do() -> None:
    message = refused(options.schedule, "@fortnightly")
    assert "--schedule '@fortnightly' is not a schedule preset" in message
    assert "@once, @continuous, @hourly, @daily" in message
    assert "is not a schedule preset" in refused(options.schedule, "@Daily")  # presets are lower case
    for cron in ("0 3 * *", "0 0 3 * * 0", "0 25 * * *", "every day"):  # 4 fields, 6 fields, hour 25, words
        message = refused(options.schedule, cron, "--monitor-schedule")
        assert message.startswith(f"--monitor-schedule {cron!r} is not a cron expression (five fields")
        assert "'none'" in message


def test_dag_ids_follow_airflows_rule_and_the_default_one_always_does() -> None:
    assert options.dag_id("mloop_houses-v2.1") == "mloop_houses-v2.1"
    assert options.dag_id("a" * 250)
    for bad in ("", "my dag", "dag/1", "dág", "a" * 251):
        assert "is not a valid Airflow DAG id" in refused(options.dag_id, bad)
    assert options.default_dag_id("houses") == "mloop_houses"
    assert options.default_dag_id("my houses/ü") == "mloop_my_houses__"
    long = options.default_dag_id("x" * 400)
    assert len(long) == 206 and options.dag_id(long + "_monitor")


def test_kubernetes_object_names_are_dns_subdomains_and_namespaces_dns_labels() -> None:
    for good in ("mloop-project", "a", "team.mloop-1", ".".join(["a" * 63] * 3)):
        assert options.k8s_name(good, "--pvc") == good
    for bad in ("UPPER", "-lead", "trail-", "a..b", "under_score", "a" * 64, ".".join(["a" * 63] * 4) + ".a"):
        message = refused(options.k8s_name, bad, "--pvc")
        assert message.startswith(f"--pvc {bad!r} is not a Kubernetes object name")
    assert options.namespace("ml-team-1") == "ml-team-1"
    for bad in ("team.a", "Team", "a" * 64, "-a"):  # a valid object name may still be no namespace
        assert "is not a Kubernetes namespace" in refused(options.namespace, bad)


def test_configmap_keys() -> None:
    assert options.config_key("mloop.yaml") == "mloop.yaml"
    assert options.config_key("prod_config-2.yml")
    for bad in ("a/b", "", "with space", "k" * 254):
        assert "is not a ConfigMap key" in refused(options.config_key, bad)


def test_image_references() -> None:
    for good in (
        "mloop",
        "mloop:0.1.0",
        "registry.example.com/team/mloop:latest",
        "Registry.Example.com:5000/mloop",  # the registry host may have capitals, the path may not
        "ghcr.io/org/ml__loop-x/app@sha256:" + "0" * 64,
        "mloop:" + "t" * 128,
    ):
        assert options.image(good) == good
    for bad in (
        "Mloop",
        "mloop:1 ; rm -rf /",
        "mloop:" + "t" * 129,
        "mloop@sha256:abc",
        "mloop:",
        "/mloop",
        "a/" * 130 + "b",
    ):
        message = refused(options.image, bad)
        assert message.startswith(f"--image {bad!r} is not a container image reference")
        assert "[registry/]name[:tag][@sha256:digest]" in message


def test_paths_must_be_absolute_without_control_characters_and_retries_0_to_10() -> None:
    assert options.absolute_path("/opt/venv/bin/mloop", "--mloop") == "/opt/venv/bin/mloop"
    assert options.absolute_path("/srv/it's here", "--project-dir")  # quotes are fine: values become literals
    assert "must be an absolute path" in refused(options.absolute_path, "bin/mloop", "--mloop")
    for bad in ("/a\nb", "/a\tb", "/a\x00b", "/a\rb", "/a\x7fb"):
        message = refused(options.absolute_path, bad, "--project-dir")
        assert message == f"--project-dir {bad!r} contains a control character."
    assert [options.retries(n) for n in (0, 10)] == [0, 10]
    assert refused(options.retries, -1) == "--retries -1 is out of range; use 0 to 10."
    assert "out of range" in refused(options.retries, 11)


def test_the_default_image_is_tagged_with_the_installed_version() -> None:
    assert options.DEFAULT_IMAGE == f"mloop:{options.mloop_version()}"
    assert options.image(options.DEFAULT_IMAGE)


def test_batch_paths_go_together_and_are_written_as_given() -> None:
    assert options.batch_paths(None, None, "spark") is None  # no batch pipeline
    assert options.batch_paths("data/new", "scores", "spark") == ("data/new", "scores")
    assert options.batch_paths("s3a://b/in", "s3a://b/in-scores", "spark") == ("s3a://b/in", "s3a://b/in-scores")
    assert options.batch_paths("in.csv", "out.CSV.gz", "local") == ("in.csv", "out.CSV.gz")
    assert refused(options.batch_paths, "in.csv", None, "spark").startswith("--batch-input needs --batch-output too:")
    assert "pass both, or neither" in refused(options.batch_paths, None, "out", "spark")
    assert refused(options.batch_paths, "a", "./a/", "spark").endswith("scoring would overwrite its own input.")
    assert refused(options.batch_paths, "a", "b", "dask") == "--batch-engine 'dask' is not one of local, spark."
    message = refused(options.batch_paths, "a.csv", "scores", "local")
    assert message.startswith("--batch-output 'scores': with --batch-engine local the scores are one file")
    assert ".csv, .csv.gz, .parquet, .pq" in message


def test_a_relative_path_is_joined_to_the_folder_the_steps_run_in() -> None:
    assert options.in_folder("data/new.parquet", "/project") == "/project/data/new.parquet"
    assert options.in_folder("/abs/new.parquet", "/project") == "/abs/new.parquet"
    assert options.in_folder("s3a://bucket/new", "/project") == "s3a://bucket/new"
