"""Cold start and warm latency of mme_local vs calling Triton directly (loopback only).

    .venv/bin/python bench/bench_mme_local_latency.py [--repeats 300] [--cold 3] [--out DIR]

Cold start: the real all-MiniLM-L6-v2 embedding TargetModel (exported and packaged as the
pipeline does, via bench_triton_embedding's helpers), stored in a local store; on a fresh
InService endpoint the first InvokeEndpoint (boto3) is timed until its answer and split into
download, extract (verify + unpack) and load (Triton's `POST /models`) as the service measured
them; first inference is the rest. Repeated `--cold` times, each on a new endpoint.

Warm latency: the same request through the service (`POST /endpoints/E/invocations` with the
TargetModel header) and straight to Triton (`POST /models/<hash>/invoke`), both over one
keep-alive HTTP connection and alternating request by request, for the MiniLM encoder (about
30 tokens) and for a trivial model where Triton's own time is smallest. Target: the service
adds at most 2 ms at p50. Prints a table; writes JSON under bench/results/.
"""

from __future__ import annotations

import argparse
import http.client
import shutil
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from bench_report import machine_and_versions, percentiles, print_table, write_results
from bench_triton_embedding import export_minilm, text_of, tokenizer_for

from mme_factory.protocol import TARGET_MODEL_HEADER, endpoint_path, kserve_request
from mme_factory.settings import load_settings
from mme_local.runtime.target_model import TargetModel
from tasks.packaging.package_triton import package_triton
from test_support.mme_local_harness import ServiceProcess, clients, create_endpoint, pooled_config
from test_support.mme_local_models import infer_body, model_tarball, write_model

REPO = Path(__file__).resolve().parent.parent

TARGET_OVERHEAD_P50_MS = 2.0
EMBEDDING = "bench/embedding-query/v1.tar.gz"
DOUBLER = "bench/doubler/v1.tar.gz"


def build_store(work: Path) -> tuple[Path, str]:
    """A local store holding the MiniLM query encoder and a trivial model under one prefix."""
    run = work / "runs" / "bench" / "bench"
    export = export_minilm(run, "bench")
    summary = package_triton(run, load_settings(environ={}))
    store = work / "store"
    prefix = store / "mme" / "models"
    (prefix / EMBEDDING).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(summary.packages[0].tarball, prefix / EMBEDDING)
    write_model(prefix, DOUBLER, model_tarball("bench_doubler_v1"))
    text = text_of(30, tokenizer_for(export))
    return store, text


def cold_start(service: ServiceProcess, index: int, body: bytes) -> dict[str, float]:
    sagemaker, runtime = clients(service.url, pooled_config(max_attempts=1))
    endpoint = f"dev-mme-cold-{index}"
    create_endpoint(sagemaker, endpoint, "s3://bucket/mme/models/")
    started = time.perf_counter()
    runtime.invoke_endpoint(EndpointName=endpoint, TargetModel=EMBEDDING, Body=body)["Body"].read()
    total = time.perf_counter() - started
    timings = service.get_json(endpoint_path(endpoint))["models"][0]["timings_s"]
    sagemaker.delete_endpoint(EndpointName=endpoint)
    stages = {stage: timings[stage] for stage in ("download", "extract", "load")}
    return {**stages, "first_inference": total - sum(stages.values()), "total": total}


def paired(service: ServiceProcess, target: str, body: bytes, repeats: int) -> dict[str, dict]:
    """Warm latency through the service and straight to Triton, alternating request by request."""
    state = service.get_json(endpoint_path("dev-mme-warm"))
    triton = urlparse(state["triton_url"])
    name = TargetModel.parse(target).triton_name
    ways = {
        "service": (
            http.client.HTTPConnection("127.0.0.1", service.port),
            "/endpoints/dev-mme-warm/invocations",
            {"Content-Type": "application/json", TARGET_MODEL_HEADER: target},
        ),
        "triton": (
            http.client.HTTPConnection(triton.hostname, triton.port),
            f"/models/{name}/invoke",
            {"Content-Type": "application/json"},
        ),
    }
    samples: dict[str, list[float]] = {way: [] for way in ways}
    for round_index in range(repeats + 10):
        for way, (connection, path, headers) in ways.items():
            started = time.perf_counter()
            connection.request("POST", path, body, headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"{way} answered {response.status}")
            if round_index >= 10:
                samples[way].append((time.perf_counter() - started) * 1000)
    result = {way: percentiles(values) for way, values in samples.items()}
    differences = np.array(samples["service"]) - np.array(samples["triton"])
    result["service_adds_ms"] = {
        "p50_of_differences": float(np.percentile(differences, 50)),
        "difference_of_p50s": result["service"]["p50"] - result["triton"]["p50"],
    }
    return result


def run(repeats: int, cold_runs: int, work: Path) -> dict:
    store, text = build_store(work)
    embedding_body = kserve_request({"text": [text]})
    environ = {"MME_FACTORY_STATE_DIR": str(work / "state"), "MME_FACTORY_STORE": str(store)}
    with ServiceProcess(environ, work / "service.log") as service:
        cold = [cold_start(service, index, embedding_body) for index in range(cold_runs)]
        sagemaker, runtime = clients(service.url, pooled_config())
        create_endpoint(sagemaker, "dev-mme-warm", "s3://bucket/mme/models/")
        boto3_ms = []
        for target, body in ((EMBEDDING, embedding_body), (DOUBLER, infer_body([1.0]))):
            runtime.invoke_endpoint(EndpointName="dev-mme-warm", TargetModel=target, Body=body)
        for _ in range(50):
            started = time.perf_counter()
            runtime.invoke_endpoint(
                EndpointName="dev-mme-warm", TargetModel=EMBEDDING, Body=embedding_body
            )["Body"].read()
            boto3_ms.append((time.perf_counter() - started) * 1000)
        warm = {
            "embedding_30_tokens": paired(service, EMBEDDING, embedding_body, repeats),
            "trivial_model": paired(service, DOUBLER, infer_body([1.0]), repeats),
        }
    medians = {key: float(np.median([run[key] for run in cold])) for key in cold[0]}
    return {
        **machine_and_versions(),
        "inputs": {"repeats": repeats, "cold_runs": cold_runs, "text_tokens": 30},
        "cold_start_s": {"runs": cold, "median": medians, "published_case_s": 12.7},
        "warm_ms": warm,
        "boto3_invoke_embedding_ms": percentiles(boto3_ms),
        "target_overhead_p50_ms": TARGET_OVERHEAD_P50_MS,
        "passed": all(
            entry["service_adds_ms"]["difference_of_p50s"] <= TARGET_OVERHEAD_P50_MS
            for entry in warm.values()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--cold", type=int, default=3)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="mme-latency-") as work:
        results = run(args.repeats, args.cold, Path(work))
    median = results["cold_start_s"]["median"]
    rows = [
        (
            "cold start, MiniLM embedding (median)",
            f"{median['total']:.2f} s = download {median['download']:.3f} + extract "
            f"{median['extract']:.3f} + load {median['load']:.2f} + first inference "
            f"{median['first_inference']:.3f} (published case: 12.7 s)",
        )
    ]
    for name, entry in results["warm_ms"].items():
        rows.append(
            (
                f"warm p50 / p95, {name}",
                f"service {entry['service']['p50']:.2f} / {entry['service']['p95']:.2f} ms, "
                f"Triton {entry['triton']['p50']:.2f} / {entry['triton']['p95']:.2f} ms, "
                f"service adds {entry['service_adds_ms']['difference_of_p50s']:+.2f} ms",
            )
        )
    boto = results["boto3_invoke_embedding_ms"]
    rows.append(("boto3 InvokeEndpoint, embedding", f"p50 {boto['p50']:.2f} ms"))
    rows.append(("passed (service adds <= 2 ms p50)", str(results["passed"])))
    print_table(rows)
    print(f"results: {write_results('mme_local_latency', results, args.out)}")
    sys.exit(0 if results["passed"] else 1)


if __name__ == "__main__":
    main()
