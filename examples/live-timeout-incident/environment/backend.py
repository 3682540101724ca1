"""The pricing backend: GET /price/<id> answers {"id": <id>, "price": 100 + id}."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if self.path == "/healthz":
            body, status = {"ok": True}, 200
        elif len(parts) == 2 and parts[0] == "price" and parts[1].isdigit():
            body, status = {"id": int(parts[1]), "price": 100 + int(parts[1])}, 200
        else:
            body, status = {"error": "not found"}, 404
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


# $PORT: the harness may put a proxy on 9000 and move the backend behind it.
ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "9000"))), Handler).serve_forever()
