"""The orders API, in front of PostgreSQL's `shop` database.

POST /orders/<key>?amount_cents=<n>  records an order: 201 {"key", "amount_cents"};
                                     409 if the key is taken
GET  /orders/<key>                   200 {"key", "amount_cents"}, or 404
GET  /healthz                        200 when the database answers
"""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import psycopg2
import psycopg2.errors

DSN = os.environ.get("DATABASE_URL", "host=127.0.0.1 port=5432 dbname=shop user=postgres")

local = threading.local()


def connection():
    """This thread's connection, opened again if the last one broke."""
    conn = getattr(local, "conn", None)
    if conn is None or conn.closed:
        conn = psycopg2.connect(DSN, connect_timeout=5)
        local.conn = conn
    return conn


def query(sql, args):
    conn = connection()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
        conn.commit()
        return row
    except Exception:
        if not conn.closed:
            conn.rollback()
        raise


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        amount = parse_qs(url.query).get("amount_cents", [""])[0]
        if len(parts) != 2 or parts[0] != "orders" or not amount.isdigit():
            return self.reply(400, {"error": "expected POST /orders/<key>?amount_cents=<n>"})
        try:
            row = query("INSERT INTO orders (order_key, amount_cents) VALUES (%s, %s) RETURNING order_key, amount_cents", (parts[1], int(amount)))
        except psycopg2.errors.UniqueViolation:
            return self.reply(409, {"error": f"order {parts[1]} exists"})
        except Exception as e:
            return self.reply(500, {"error": str(e).strip()})
        self.reply(201, {"key": row[0], "amount_cents": row[1]})

    def do_GET(self):
        parts = urlsplit(self.path).path.strip("/").split("/")
        try:
            if parts == ["healthz"]:
                query("SELECT 1", ())
                return self.reply(200, {"ok": True})
            if len(parts) == 2 and parts[0] == "orders":
                row = query("SELECT order_key, amount_cents FROM orders WHERE order_key = %s", (parts[1],))
                if row is None:
                    return self.reply(404, {"error": f"no order {parts[1]}"})
                return self.reply(200, {"key": row[0], "amount_cents": row[1]})
        except Exception as e:
            return self.reply(500, {"error": str(e).strip()})
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
