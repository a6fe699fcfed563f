"""What goes into the Lambda packages, checked from the dependency graph (building them is a manual step,
see BENCHMARKS.md): the ingest function must link no DuckDB (the design's cold-start budget)."""

import subprocess

import pytest

from conftest import ROOT


def dependencies(package):
    out = subprocess.run(
        ["cargo", "tree", "-p", package, "-e", "normal", "--prefix", "none", "--format", "{p}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


@pytest.mark.parametrize("package", ["splat-notify", "splat-signin"])
def test_functions_outside_the_vpc_link_no_duckdb(package):
    """The two functions outside the VPC (alerts, sign-in) stay small: no DuckDB, as ingest."""
    deps = dependencies(package)
    assert "splat-shared" in deps and not {d for d in deps if "duckdb" in d}, package


def test_ingest_links_no_duckdb():
    deps = dependencies("splat-ingest")
    assert "splat-shared" in deps and "lambda_http" in deps  # the graph is the real one
    assert not {d for d in deps if "duckdb" in d}, "the ingest function must not link DuckDB"
