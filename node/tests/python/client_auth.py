"""Calls a node whose OTLP and API ports serve TLS and need bearer tokens,
as outside clients do: the OpenTelemetry Python SDK's OTLP/HTTP and
OTLP/gRPC exporters, and plain HTTPS requests (Python's ssl and urllib).
Checks that every call without the right token is refused, that a
tenant-bound ingest token writes its own tenant whatever the data says,
and that a read token of another tenant finds nothing of it on any
endpoint. Exits non-zero with the first failed check.

usage: client_auth.py HOST CA_FILE   (tokens in the environment:
  TOKEN_INGEST_ACME, TOKEN_READ_ACME, TOKEN_READ_OTHER, TOKEN_ADMIN)
"""
import json
import os
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult

HOST, CA = sys.argv[1], sys.argv[2]
TOKENS = {k: os.environ[f"TOKEN_{k}"] for k in ["INGEST_ACME", "READ_ACME", "READ_OTHER", "ADMIN"]}
CONTEXT = ssl.create_default_context(cafile=CA)
checks = 0


def check(condition, what):
    global checks
    if not condition:
        sys.exit(f"FAILED: {what}")
    checks += 1


def call(method, port, path, token=None, body=None, headers=None):
    """(status, headers, parsed body) over HTTPS."""
    request = urllib.request.Request(f"https://{HOST}:{port}{path}", method=method, data=body)
    for k, v in (headers or {}).items():
        request.add_header(k, v)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=CONTEXT, timeout=10) as response:
            status, hdrs, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as e:
        status, hdrs, raw = e.code, e.headers, e.read()
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw
    return status, hdrs, parsed


def api(path, token, method="GET", body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    hdrs = {"content-type": "application/json", **(headers or {})}
    return call(method, 8080, path, token, data, hdrs)


def export_one(exporter, correlation_id, resource_tenant):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    resource = Resource.create({"service.name": "checkout", "tenant_id": resource_tenant})
    provider = TracerProvider(resource=resource)
    results = []

    class Recording(SimpleSpanProcessor):
        def on_end(self, span):
            results.append(exporter.export([span]))

    provider.add_span_processor(Recording(exporter))
    tracer = provider.get_tracer("client-auth-test")
    with tracer.start_as_current_span("POST /checkout", attributes={"correlation_id": correlation_id, "tenant_id": resource_tenant}) as span:
        trace_id = format(span.get_span_context().trace_id, "032x")
    return results[0], trace_id


def http_exporter(token):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    headers = {"authorization": f"Bearer {token}"} if token else {}
    return OTLPSpanExporter(endpoint=f"https://{HOST}:4318/v1/traces", certificate_file=CA, headers=headers, timeout=10)


def grpc_exporter(token):
    import grpc
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    with open(CA, "rb") as f:
        credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
    headers = (("authorization", f"Bearer {token}"),) if token else None
    return OTLPSpanExporter(endpoint=f"{HOST}:4317", credentials=credentials, headers=headers, timeout=10)


def main():
    # Plain HTTP to a TLS port is not served.
    try:
        with socket.create_connection((HOST, 4318), timeout=5) as s:
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            answer = s.recv(100)
    except OSError:
        answer = b""
    check(not answer.startswith(b"HTTP/1.1 2"), f"plain HTTP on the TLS port was served: {answer!r}")

    # OTLP/HTTP without a token, with an unknown one, with a read token.
    for token, status in [(None, 401), ("olly_guess", 401), (TOKENS["READ_ACME"], 403)]:
        got, hdrs, _ = call("POST", 4318, "/v1/traces", token, b"{}", {"content-type": "application/json"})
        check(got == status, f"OTLP/HTTP with token {token and token[:8]}: {got}, expected {status}")
    _, hdrs, _ = call("POST", 4318, "/v1/traces", None, b"{}", {"content-type": "application/json"})
    check(hdrs.get("www-authenticate") == "Bearer", "a 401 names the Bearer scheme")

    # The SDK exporters: refused without a token, let in with the ingest
    # token; the data says tenant "victim", the token says "acme".
    result, _ = export_one(http_exporter(None), "order-nobody", "victim")
    check(result == SpanExportResult.FAILURE, "the HTTP exporter without a token was let in")
    result, _ = export_one(grpc_exporter(None), "order-nobody", "victim")
    check(result == SpanExportResult.FAILURE, "the gRPC exporter without a token was let in")
    result, trace_http = export_one(http_exporter(TOKENS["INGEST_ACME"]), "order-acme-1", "victim")
    check(result == SpanExportResult.SUCCESS, "the HTTP exporter with the ingest token failed")
    result, trace_grpc = export_one(grpc_exporter(TOKENS["INGEST_ACME"]), "order-acme-2", "victim")
    check(result == SpanExportResult.SUCCESS, "the gRPC exporter with the ingest token failed")

    # The API: open health checks, tokens everywhere else.
    check(call("GET", 8080, "/healthz")[0] == 200, "/healthz is open")
    check(api("/api/v1/correlate/order-acme-1", None)[0] == 401, "the API without a token")
    check(api("/api/v1/correlate/order-acme-1", TOKENS["INGEST_ACME"])[0] == 403, "the API with an ingest token")
    check(api("/metrics", TOKENS["READ_ACME"])[0] == 403, "node-wide /metrics with a token bound to one tenant")
    check(api("/metrics", TOKENS["ADMIN"])[0] == 200, "/metrics with a node-wide token")

    # Acme's reader finds both spans under acme, whatever header it sends.
    for cid in ["order-acme-1", "order-acme-2"]:
        deadline = time.time() + 20
        while True:
            status, _, body = api(f"/api/v1/correlate/{cid}", TOKENS["READ_ACME"], headers={"X-Tenant-ID": "victim"})
            if status == 200 or time.time() > deadline:
                break
            time.sleep(0.1)
        check(status == 200 and len(body["traces"]) == 1, f"acme's reader finds {cid}: {status} {body}")
    # An operator's token picks the tenant by header; victim holds nothing.
    check(api("/api/v1/correlate/order-acme-1", TOKENS["ADMIN"], headers={"X-Tenant-ID": "acme"})[0] == 200, "admin reads acme")
    check(api("/api/v1/correlate/order-acme-1", TOKENS["ADMIN"], headers={"X-Tenant-ID": "victim"})[0] == 404, "nothing went to victim")

    # Another tenant's reader: 404 on every lookup, nothing in any listing,
    # whatever tenant it names.
    other, spoof = TOKENS["READ_OTHER"], {"X-Tenant-ID": "acme"}
    for path in [
        "/api/v1/correlate/order-acme-1",
        "/api/v1/correlate/order-acme-1/timeline",
        "/api/v1/correlate/order-acme-1/impact",
        "/api/v1/correlate/order-acme-1?tenant=acme",
    ]:
        check(api(path, other, headers=spoof)[0] == 404, f"{path} for another tenant")
    status, _, _ = api(f"/api/v1/traces/{trace_http}", other, headers=spoof)
    check(status == 404, f"trace lookup for another tenant: {status}")
    check(api("/api/v1/ai/rca", other, "POST", {"correlation_id": "order-acme-1"}, spoof)[0] == 404, "RCA for another tenant")
    status, _, body = api("/api/v1/sessions?since=1h", other, headers=spoof)
    check(status == 200 and "order-acme" not in json.dumps(body), f"another tenant's listing: {status} {body}")
    status, _, body = api("/api/v1/ai/nlq", other, "POST", {"q": "checkout requests in the last hour"}, spoof)
    check(status == 200 and "order-acme" not in json.dumps(body), f"another tenant's NLQ: {status} {body}")
    now_ms = int(time.time() * 1000)
    window = {"start": now_ms - 600_000, "end": now_ms + 60_000}
    for path in ["/api/v1/ai/analyze", "/api/v1/ai/rca"]:
        status, _, body = api(path, other, "POST", window, spoof)
        check(status == 200 and "checkout" not in json.dumps(body), f"another tenant's {path}: {status} {body}")
    status, _, body = api("/api/v1/sessions?since=1h", TOKENS["READ_ACME"])
    check(status == 200 and "order-acme-1" in json.dumps(body), f"acme's own listing: {status} {body}")
    print(f"{checks} checks passed")


if __name__ == "__main__":
    main()
