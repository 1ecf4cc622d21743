"""An OTLP metrics receiver built from the official protobuf definitions (`opentelemetry-proto`).

Usage: otlp_receiver.py grpc|http PORT OUT READY

Listens on 127.0.0.1:PORT (0 for any free port), over gRPC (`grpcio`, the generated
MetricsService) or OTLP/HTTP protobuf (POST /v1/metrics, the standard library's http.server).
Each accepted ExportMetricsServiceRequest is appended to OUT as one JSON line, in the protobuf
JSON mapping (`google.protobuf.json_format.MessageToDict`): camelCase names, 64-bit integers as
strings, enums by name. Once listening, the port is written to READY (atomically, by rename).
Runs until killed.
"""

import gzip
import json
import os
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)

_lock = threading.Lock()


def record(out, protocol, request):
    line = json.dumps(
        {"protocol": protocol, "request": json_format.MessageToDict(request)},
        separators=(",", ":"),
    )
    with _lock:
        with open(out, "a", encoding="utf-8") as file:
            file.write(line + "\n")
            file.flush()


def announce(ready, port):
    temporary = ready + ".tmp"
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(f"{port}\n")
    os.replace(temporary, ready)


class MetricsService(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, out):
        self.out = out

    def Export(self, request, context):
        record(self.out, "grpc", request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def serve_grpc(port, out, ready):
    # No SO_REUSEPORT: a port another process listens on is an error, not shared.
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)]
    )
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(MetricsService(out), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    if bound == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    server.start()
    announce(ready, bound)
    server.wait_for_termination()


def serve_http(port, out, ready):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            if self.path != "/v1/metrics":
                self.answer(404, b"", "text/plain")
                return
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if self.headers.get("Content-Encoding", "").lower() == "gzip":
                body = gzip.decompress(body)
            if self.headers.get("Content-Type", "") != "application/x-protobuf":
                self.answer(415, b"", "text/plain")
                return
            request = metrics_service_pb2.ExportMetricsServiceRequest()
            request.ParseFromString(body)
            record(out, "http", request)
            response = metrics_service_pb2.ExportMetricsServiceResponse()
            self.answer(200, response.SerializeToString(), "application/x-protobuf")

        def answer(self, status, body, content_type):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    ThreadingHTTPServer.allow_reuse_address = True
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    announce(ready, server.server_address[1])
    server.serve_forever()


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("grpc", "http"):
        sys.exit(__doc__)
    protocol, port, out, ready = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    if protocol == "grpc":
        serve_grpc(port, out, ready)
    else:
        serve_http(port, out, ready)


if __name__ == "__main__":
    main()
