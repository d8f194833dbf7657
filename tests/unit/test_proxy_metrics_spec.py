"""The proxy's mtail program (components/specs/proxy_metrics.py), run by the real mtail over the
lines nginx's log_format writes: what each line adds to which series, and that the image pins
the mtail the e2e runs."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from prometheus_client.parser import text_string_to_metric_families

from components.specs import proxy_metrics
from components.versions import MTAIL_DEBIAN_VERSION
from images.mlflow import server_contract as contract


def mtail() -> str:
    path = shutil.which("mtail")
    assert path, "mtail is not installed (Debian: apt-get install mtail)"
    return path


def syslog(fields: str) -> str:
    """One line as nginx sends it (`tag=..., nohostname`), the log_format's fields filled in."""
    return f"<190>Dec  4 17:00:00 {proxy_metrics.SYSLOG_TAG}: {fields}\n"


def run_once(tmp_path, lines: list[str]) -> list:
    """mtail's one-shot mode: the program over `lines`, the store printed as Prometheus text."""
    programs = tmp_path / "progs"
    programs.mkdir()
    (programs / proxy_metrics.PROGRAM_NAME).write_text(proxy_metrics.mtail_program())
    log = tmp_path / "lines.log"
    log.write_text("".join(lines))
    result = subprocess.run(
        [mtail(), "--one_shot", "--one_shot_format=prometheus", "--emit_prog_label=false",
         f"--progs={programs}", f"--logs={log}", "--logtostderr"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [sample for family in text_string_to_metric_families(result.stdout) for sample in family.samples]


def value(samples: list, name: str, **labels: str) -> float:
    (sample,) = [s for s in samples if s.name == name and s.labels == labels]
    return sample.value


def test_each_line_is_counted_by_status_with_its_bytes_and_times(tmp_path):
    samples = run_once(
        tmp_path,
        [
            syslog("200 0.120 325 900 0.118"),  # proxied
            syslog("413 0.001 147 176 -"),  # nginx's own: no upstream asked
            syslog("502 2.000 300 150 1.000, 1.000"),  # two upstreams tried: no single time
            syslog("200 0.004 200 100 0.004"),
            "<190>Dec  4 17:00:00 other_tag: 500 0.1 1 1 0.1\n",  # not nginx's lines: ignored
        ],
    )
    requests = proxy_metrics.METRIC_REQUESTS
    assert value(samples, requests, status="200") == 2
    assert value(samples, requests, status="413") == 1
    assert value(samples, requests, status="502") == 1
    assert "500" not in {s.labels.get("status") for s in samples if s.name == requests}
    assert value(samples, proxy_metrics.METRIC_REQUEST_BYTES) == 325 + 147 + 300 + 200
    assert value(samples, proxy_metrics.METRIC_RESPONSE_BYTES) == 900 + 176 + 150 + 100
    duration = proxy_metrics.METRIC_DURATION
    assert value(samples, duration + "_count") == 4
    assert value(samples, duration + "_sum") == pytest.approx(0.120 + 0.001 + 2.0 + 0.004)
    upstream = proxy_metrics.METRIC_UPSTREAM_DURATION
    assert value(samples, upstream + "_count") == 2  # only the lines with one upstream time
    assert value(samples, upstream + "_sum") == pytest.approx(0.118 + 0.004)
    # The same buckets as the servers' histograms, so the two compare.
    bounds = sorted(float(s.labels["le"]) for s in samples if s.name == duration + "_bucket")
    assert bounds == [*contract.LATENCY_BUCKETS, float("inf")]
    assert value(samples, duration + "_bucket", le="0.005") == 2


def test_the_log_format_writes_the_fields_the_program_reads_and_ends_each_line():
    fields = re.findall(r"\$(\w+)", proxy_metrics.LOG_FORMAT_FIELDS)
    assert fields == ["status", "request_time", "request_length", "bytes_sent", "upstream_response_time"]
    assert proxy_metrics.nginx_log_format().endswith("\\n';")
    # nginx's syslog tag: letters, digits and underscores, at most 32.
    assert re.fullmatch(r"\w{1,32}", proxy_metrics.SYSLOG_TAG)


def test_the_container_runs_flags_mtail_has():
    spec = proxy_metrics.mtail_container()
    result = subprocess.run([mtail(), "--help"], capture_output=True, text=True, timeout=30)
    known = set(re.findall(r"^\s+-(\w+)", result.stdout + result.stderr, flags=re.MULTILINE))
    used = {part.split("=", 1)[0].removeprefix("--") for part in spec.entrypoint[1:]}
    assert used <= known, used - known
    assert spec.uploads == (
        (f"{proxy_metrics.PROGRAM_DIR}/{proxy_metrics.PROGRAM_NAME}", proxy_metrics.mtail_program()),
    )


def test_the_image_pins_the_mtail_the_e2e_runs():
    """images/mtail installs Debian's package at this version; the e2e runs the installed one."""
    result = subprocess.run([mtail(), "--version"], capture_output=True, text=True, timeout=30)
    assert f"git revision {MTAIL_DEBIAN_VERSION} " in result.stdout + result.stderr
