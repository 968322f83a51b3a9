"""Rendering a page: what is burning and how fast, budget left, time to exhaustion, spans, runbook."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from opentelemetry.trace import SpanKind

from alerts.pager.page import PageSources, build_page, format_duration, page_json, render_text
from slo.prometheus_api import PrometheusAPI
from tests.alerts.pager.conftest import LoopbackServer, notification, write_traces

STARTS_AT = notification("availability-page-firing").alerts[0].starts_at
NOW = STARTS_AT + timedelta(minutes=3)


def _page_text(sources: PageSources, name: str = "availability-page-firing") -> str:
    return render_text(build_page(notification(name), sources, NOW))


def test_the_page_says_how_fast_the_budget_burns_how_much_is_left_and_when_it_runs_out(
    prometheus: LoopbackServer,
) -> None:
    api = PrometheusAPI(prometheus.url)
    text = _page_text(PageSources(prometheus=api))
    api.close()

    assert "burning 20.5x the sustainable rate (5m, error ratio 0.205%); 16.1x over 1h (error ratio 0.161%)" in text
    assert "Budget left: 62.3% of the 30d budget" in text
    # 0.623 x 30 days / 20.5 = 78 771 s
    assert "Time to exhaustion: 21h 52m at the current burn rate" in text


def test_the_page_json_carries_the_figures_as_numbers(prometheus: LoopbackServer) -> None:
    api = PrometheusAPI(prometheus.url)
    document = page_json(build_page(notification("availability-page-firing"), PageSources(prometheus=api), NOW))
    api.close()

    (alert,) = document["alerts"]
    assert alert["burn_rate"] == 20.5
    assert alert["budget_remaining"] == 0.623
    assert alert["seconds_to_exhaustion"] == pytest.approx(0.623 * 30 * 86400 / 20.5)
    assert document["event"] == "trigger"
    assert json.loads(json.dumps(document)) == document


def test_the_prometheus_reads_ask_for_the_alerts_slo(prometheus: LoopbackServer) -> None:
    api = PrometheusAPI(prometheus.url)
    _page_text(PageSources(prometheus=api))
    api.close()

    queries = {request.path for request in prometheus.requests if request.path.startswith("/api/v1/query_range")}
    assert all("sloth_id%3D%22payments-availability%22" in query for query in queries)
    assert any("slo%3Acurrent_burn_rate%3Aratio" in query for query in queries)


def test_the_page_lists_the_slowest_requests_prometheus_kept_exemplars_for(prometheus: LoopbackServer) -> None:
    api = PrometheusAPI(prometheus.url)
    text = _page_text(PageSources(prometheus=api))
    api.close()

    section = text.split("Slowest requests (Prometheus exemplars):\n", 1)[1].split("\n\n", 1)[0]
    assert section.splitlines() == [
        "- POST /v1/payments 850.0 ms at 16:01, trace 4bf92f3577b34da6a3ce929d0e0e4736",
        "- POST /v1/payments 610.0 ms at 16:02, trace 00f067aa0ba902b700f067aa0ba902b7",
        "- GET /v1/accounts/{account_id} 420.0 ms at 16:03, trace a3ce929d0e0e47364bf92f3577b34da6",
    ]
    (exemplars,) = [r.path for r in prometheus.requests if r.path.startswith("/api/v1/query_exemplars")]
    assert "http_server_request_duration_seconds_bucket%7Bservice%3D%22payments%22%7D" in exemplars


def test_without_prometheus_the_page_says_what_the_firing_rule_guarantees() -> None:
    text = _page_text(PageSources())

    assert "at least 14.4x the sustainable rate over 1h and 5m, or 6x over 6h and 30m" in text
    assert "at 14.4x a full 30d budget lasts 2d 2h" in text


def test_an_unreachable_prometheus_still_pages_and_says_why_figures_are_missing() -> None:
    api = PrometheusAPI("http://127.0.0.1:1", timeout=1.0)
    text = _page_text(PageSources(prometheus=api))
    api.close()

    assert "[PAGE] FIRING PaymentsAvailabilityBurn" in text
    assert "cannot query Prometheus at http://127.0.0.1:1" in text


def test_a_predictive_alert_shows_when_the_breach_is_predicted() -> None:
    text = _page_text(PageSources(), "predictive-firing")

    assert "Predicted breach of the page condition in ~12m" in text
    assert "Why it fired: db_pool full in ~12m" in text
    assert "`nova runbooks run PaymentsAvailabilityPredictedBurn`" in text


def test_a_platform_alert_pages_with_its_description_and_no_budget(prometheus: LoopbackServer) -> None:
    api = PrometheusAPI(prometheus.url)
    text = _page_text(PageSources(prometheus=api), "platform-not-ready-firing")
    api.close()

    assert text.startswith("# [PAGE] FIRING NovaServiceNotReady: payments")
    assert "- What is burning: payments (NovaServiceNotReady); since" in text
    assert "- Details: payments answers 503 on /readyz" in text
    assert "Budget" not in text
    assert "`nova runbooks run NovaServiceNotReady`" in text
    assert not [r for r in prometheus.requests if r.path.startswith("/api/v1/query_range")]


def test_the_page_lists_the_most_frequent_failures_and_slowest_server_spans_with_trace_ids(tmp_path: Path) -> None:
    at = STARTS_AT
    write_traces(
        tmp_path / "payments.jsonl",
        "payments",
        [
            *[("POST /v1/payments", SpanKind.SERVER, at - timedelta(minutes=2), 3.0, 503, False)] * 3,
            ("INSERT ledger_entries", SpanKind.INTERNAL, at - timedelta(minutes=3), 1.0, None, True),
            *[("GET /v1/accounts/{account_id}", SpanKind.SERVER, at - timedelta(minutes=4), 2.0, 500, False)] * 2,
            ("POST /v1/refunds", SpanKind.SERVER, at - timedelta(minutes=40), 1.0, 500, False),  # before the window
            ("POST /v1/payments", SpanKind.SERVER, at - timedelta(minutes=5), 850.0, 201, False),
            ("GET /v1/payments/{payment_id}", SpanKind.SERVER, at - timedelta(minutes=6), 640.0, 200, False),
            ("POST /v1/deposits", SpanKind.SERVER, at - timedelta(minutes=7), 420.0, 201, False),
            ("GET /v1/accounts/{account_id}", SpanKind.SERVER, at - timedelta(minutes=8), 30.0, 200, False),
            ("GET /v1/slow", SpanKind.SERVER, at - timedelta(minutes=30), 5000.0, 200, False),  # before the window
            ("SELECT accounts", SpanKind.CLIENT, at - timedelta(minutes=5), 9000.0, None, False),  # not a server span
        ],
    )
    trace_of = _trace_ids(tmp_path / "payments.jsonl")

    text = _page_text(PageSources(traces_dir=tmp_path))

    failed = text.split("Failed spans", 1)[1].split("Slowest server spans:", 1)[0]
    assert [line.split(" x")[0] for line in failed.splitlines() if line.startswith("- ")] == [
        "- POST /v1/payments 503",
        "- GET /v1/accounts/{account_id} 500",
        "- INSERT ledger_entries",
    ]
    assert "POST /v1/payments 503 x3, latest trace " in failed
    assert "refunds" not in text
    slowest = text.split("Slowest server spans:", 1)[1].split("\n\n", 1)[0]
    assert slowest.splitlines()[1:] == [
        f"- POST /v1/payments 201 850.0 ms, trace {trace_of['POST /v1/payments', 850.0]}",
        f"- GET /v1/payments/{{payment_id}} 200 640.0 ms, trace {trace_of['GET /v1/payments/{payment_id}', 640.0]}",
        f"- POST /v1/deposits 201 420.0 ms, trace {trace_of['POST /v1/deposits', 420.0]}",
    ]


def test_without_a_trace_file_for_the_service_the_page_has_no_span_section(tmp_path: Path) -> None:
    text = _page_text(PageSources(traces_dir=tmp_path))

    assert "Failed spans" not in text
    assert "Slowest server spans" not in text


def test_first_steps_come_from_the_runbooks_first_five_minutes_section(tmp_path: Path) -> None:
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "payments-availability-page.md").write_text(
        "# Payments availability\n\n## Symptoms\n- ignored bullet\n\n## First five minutes\n"
        "Some prose first.\n\n"
        "1. Acknowledge the page.\n2. Check `GET /readyz` on payments;\n   a 503 means the database.\n"
        "3. Three.\n4. Four.\n5. Five.\n6. Six is not on the page.\n\n## Diagnose\n- not a first step\n"
    )

    text = _page_text(PageSources(runbook_root=tmp_path))

    steps = text.split("First steps", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    assert steps == [
        "1. Acknowledge the page.",
        "2. Check `GET /readyz` on payments; a 503 means the database.",
        "3. Three.",
        "4. Four.",
        "5. Five.",
        "6. Run the diagnostics: `nova runbooks run PaymentsAvailabilityBurn`",
    ]
    assert "Runbook: runbooks/payments-availability-page.md" in text


def test_without_the_runbook_on_disk_the_first_steps_are_generic_for_the_kind_and_end_with_the_command() -> None:
    availability = _page_text(PageSources(runbook_root=Path("/nonexistent")))
    exhaustion = _page_text(PageSources(runbook_root=Path("/nonexistent")), "budget-exhaustion-firing")

    assert "5xx rate by route" in availability
    assert availability.rstrip().splitlines()[-3].endswith("`nova runbooks run PaymentsAvailabilityBurn`")
    assert "Not an emergency" in exhaustion
    assert "`nova runbooks run PaymentsLatencyBurnBudgetExhaustion --severity ticket`" in exhaustion


def test_one_page_covers_every_alert_of_the_group() -> None:
    page = build_page(notification("availability-page-two-alerts"), PageSources(), NOW)

    text = render_text(page)
    assert len(page.sections) == 2
    assert "(2 alerts firing)" in page.headline
    assert 'instance="payments-2"' in text
    assert text.count("Run the diagnostics") == 1  # the second alert of the same SLO points to the first
    assert "Same SLO, figures and first steps as above" in text


def test_a_resolved_group_renders_as_a_resolve_page() -> None:
    page = build_page(notification("availability-page-resolved"), PageSources(), NOW)

    assert page.event == "resolve"
    assert render_text(page).startswith("# [PAGE] RESOLVED PaymentsAvailabilityBurn")


def test_a_ticket_severity_group_is_headed_as_a_ticket() -> None:
    page = build_page(notification("budget-exhaustion-firing"), PageSources(), NOW)

    assert (page.severity, page.headline.split()[0]) == ("ticket", "[TICKET]")


@pytest.mark.parametrize(
    ("seconds", "text"), [(45, "45s"), (250, "4m 10s"), (78771, "21h 52m"), (180000, "2d 2h"), (86400 * 30, "30d")]
)
def test_durations_are_written_in_two_units_at_most(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def _trace_ids(path: Path) -> dict[tuple[str, float], str]:
    found = {}
    for line in path.read_text().splitlines():
        for resource in json.loads(line)["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for span in scope["spans"]:
                    millis = (int(span["endTimeUnixNano"]) - int(span["startTimeUnixNano"])) / 1e6
                    found[span["name"], round(millis, 1)] = span["traceId"]
    return found
