"""The catalogue API: GET /items/<id> answers {"id": <id>, "name": "item-<id>"}."""
import json
import os
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def lookup(item_id):
    # Scans the whole catalogue for every request.
    time.sleep(1.0)
    return {"id": item_id, "name": f"item-{item_id}"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/healthz":
            return self.reply(200, {"ok": True})
        parts = self.path.strip("/").split("/")
        if len(parts) == 2 and parts[0] == "items" and parts[1].isdigit():
            return self.reply(200, lookup(int(parts[1])))
        self.reply(404, {"error": "not found"})

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8080"))), Handler).serve_forever()
