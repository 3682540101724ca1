"""A tiny HTTP service used by the docker-http-service example task."""

import os
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

GREETING_FILE = "/app/greeting.txt"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        url = urlparse(self.path)
        if url.path == "/health":
            self.reply(200, "ok")
        elif url.path == "/greeting":
            try:
                with open(GREETING_FILE, encoding="utf-8") as f:
                    self.reply(200, f.read())
            except OSError:
                self.reply(500, "cannot read greeting")
        elif url.path == "/sum":
            query = parse_qs(url.query)
            try:
                a = int(query["a"][0])
                b = int(query["b"][0])
            except (KeyError, IndexError, ValueError):
                self.reply(400, "a and b must be integers")
                return
            self.reply(200, str(a - b))
        else:
            self.reply(404, "not found")

    def reply(self, status, body):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass


def main():
    port = int(os.environ.get("PORT", "8080"))
    HTTPServer(("127.0.0.1", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
