"""The quote API: GET /quote/<id> answers {"id": <id>, "price": <price>, "stale": false}."""
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKEND = "http://127.0.0.1:9000"


def price(item_id):
    with urllib.request.urlopen(f"{BACKEND}/price/{item_id}") as response:
        return {"id": item_id, "price": json.load(response)["price"], "stale": False}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        parts = self.path.strip("/").split("/")
        if self.path == "/healthz":
            return self.reply(200, {"ok": True})
        if len(parts) == 2 and parts[0] == "quote" and parts[1].isdigit():
            try:
                return self.reply(200, price(int(parts[1])))
            except Exception as e:
                return self.reply(502, {"error": str(e)})
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
