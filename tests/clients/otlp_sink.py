"""An OTLP trace receiver for tests/integration/observability.rs: the collector protocol's
gRPC service (TraceService/Export) and HTTP endpoint (POST /v1/traces, application/x-protobuf),
decoded with the OpenTelemetry project's own protobuf classes (opentelemetry-proto).

Usage: otlp_sink.py [--count]. The first line printed is {"grpc": PORT, "http": PORT}
(loopback, chosen by the OS); then one JSON line per span received: trace and span ids,
parent, name, attributes, the resource's service.name and the transport it came by. With
--count (benches/flight_load.py: a collector that costs little beside the server it measures)
spans are only counted, and {"spans": N} is printed when the receiver is terminated.
"""
import json
import signal
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as ts
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as tsg

lock = threading.Lock()
count_only = "--count" in sys.argv[1:]
received = [0]


def value_of(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def emit(request, transport):
    if count_only:
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with lock:
            received[0] += n
        return
    with lock:
        for rs in request.resource_spans:
            resource = {a.key: value_of(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    line = {
                        "transport": transport,
                        "trace_id": s.trace_id.hex(),
                        "span_id": s.span_id.hex(),
                        "parent_span_id": s.parent_span_id.hex(),
                        "name": s.name,
                        "kind": s.kind,
                        "status": s.status.code,
                        "service": resource.get("service.name"),
                        "attributes": {a.key: value_of(a.value) for a in s.attributes},
                    }
                    print(json.dumps(line, default=str), flush=True)


class Grpc(tsg.TraceServiceServicer):
    def Export(self, request, context):
        emit(request, "grpc")
        return ts.ExportTraceServiceResponse()


class Http(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        if self.headers.get("Content-Type") != "application/x-protobuf":
            self.send_response(415)
            self.end_headers()
            return
        request = ts.ExportTraceServiceRequest()
        request.ParseFromString(body)
        emit(request, "http")
        out = ts.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
tsg.add_TraceServiceServicer_to_server(Grpc(), server)
grpc_port = server.add_insecure_port("127.0.0.1:0")
server.start()
httpd = ThreadingHTTPServer(("127.0.0.1", 0), Http)
print(json.dumps({"grpc": grpc_port, "http": httpd.server_address[1]}), flush=True)


def stop(*_):
    if count_only:
        print(json.dumps({"spans": received[0]}), flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, stop)
try:
    httpd.serve_forever()
except KeyboardInterrupt:
    pass
