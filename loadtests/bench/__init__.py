"""Throughput benchmarks of the services, each beside the baselines that bound it.

`python -m loadtests.bench.payments_bench` measures POST /v1/payments under wrk on
SQLite and PostgreSQL, next to the HTTP ceiling (a bare ASGI app) and each database's
raw commit rate, all in the same run on the same machine. It reaches the services as
an operator does (subprocess and HTTP), never by importing them.
"""
