"""Judge a results folder left by a Locust master: the SLO gate and the payment audit, as `nova load` does.

In the cluster (loadtests/deploy/master-job.yaml) Locust's master writes `samples.csv`,
`services.csv` and `audit.json`; this writes `summary.json`, `endpoints.csv` and `scenario/`
beside them and exits 0 if the gate and the audit passed, 1 if either failed (the first breach
on one line), 2 if there was nothing to judge. The run's options are repeated so that
`summary.json` says how the run was made.

    python -m loadtests.deploy.judge results/spike --shape spike_10x --peak-users 2000 \
        --duration 600 --user-rate 1 --mix trading --processes 8 \
        --payments-url http://payments:8001 --portfolio-url http://portfolio:8002
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from loadtests import audit as payment_audit
from loadtests.gate import GateError, Thresholds
from loadtests.locust_process import LocustError, LocustRun, collect
from loadtests.results import RunParameters, write_summary
from slo.targets import suite_targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.deploy.judge", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the results folder the master wrote (--nova-results)")
    parser.add_argument("--shape", required=True)
    parser.add_argument("--peak-users", type=int, required=True)
    parser.add_argument("--duration", type=float, required=True, help="seconds")
    parser.add_argument("--user-rate", type=float, default=1.0)
    parser.add_argument("--mix", default="trading")
    parser.add_argument("--processes", type=int, default=1, help="Locust worker processes that ran users")
    parser.add_argument("--payments-url", default="http://payments:8001")
    parser.add_argument("--portfolio-url", default="http://portfolio:8002")
    targets = suite_targets()  # slo/specs: 200 ms, 99.99%
    parser.add_argument("--p99-ms", type=float, default=targets.latency_threshold_ms)
    parser.add_argument("--availability", type=float, default=targets.availability_percent, help="percent")
    args = parser.parse_args(argv)
    run = RunParameters(
        args.shape,
        args.peak_users,
        args.duration,
        args.user_rate,
        args.mix,
        args.processes,
        args.payments_url,
        args.portfolio_url,
    )
    try:
        thresholds = Thresholds.from_percent(args.p99_ms, args.availability)
        summary, files = collect(LocustRun(run, args.folder, admin_token=""), thresholds, exit_code=0)
    except (LocustError, GateError) as exc:
        print(f"judge: cannot judge {args.folder}: {exc}", file=sys.stderr)
        return 2
    audit = payment_audit.read_audit(args.folder)
    if audit is not None:
        summary = replace(summary, audit=audit)
        write_summary(files.summary, summary)
    else:
        print(f"judge: no {payment_audit.AUDIT_FILE} in {args.folder}: the payment audit was not made", file=sys.stderr)
    if summary.passed:
        print(f"judge: PASS ({args.folder / 'summary.json'})")
        return 0
    breaches = summary.breaches
    more = f" (and {len(breaches) - 1} more)" if len(breaches) > 1 else ""
    print(f"judge: SLO gate failed: {breaches[0]}{more}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
