"""The migration is done, no write was lost or duplicated, the traffic barely noticed, and
the API takes the order that failed.

Reads the live database (127.0.0.1:5432) and the harness's traffic record
(/logs/traffic): every request the traffic sent is a POST of a fresh random key of 16 hex
digits, so the record's counts are counts of such orders (an order the agent placed itself,
under another key, is not one of them).
"""
import json
import secrets
import urllib.error
import urllib.request

import psycopg2

DSN = "host=127.0.0.1 port=5432 dbname=shop user=postgres connect_timeout=5"
API = "http://127.0.0.1:8080"
SEEDED_ORDERS = 3_000_000
TRAFFIC_KEY = "^[0-9a-f]{16}$"
# Failed or timed-out writes allowed: half a second of traffic while the agent works
# (an API restart costs a few; a table rewrite under lock costs seconds), none after.
MAX_FAILED_WRITES = {"agent": 10, "grading": 2}
WINDOWS = ("warmup", "agent", "grading")
BIG_ORDER_CENTS = 3_000_000_000
EXPECTED_COLUMNS = {"id": "bigint", "order_key": "text", "amount_cents": "bigint", "created_at": "timestamp with time zone"}


def rows(cur, sql):
    cur.execute(sql)
    return cur.fetchall()


def check_schema(cur):
    columns = dict(rows(cur, "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = 'public' AND table_name = 'orders'"))
    if columns != EXPECTED_COLUMNS:
        return f"orders has columns {columns}, expected {EXPECTED_COLUMNS}"
    nullable = rows(cur, "SELECT is_nullable FROM information_schema.columns WHERE table_name = 'orders' AND column_name = 'amount_cents'")
    if nullable != [("NO",)]:
        return "orders.amount_cents accepts NULL"
    # The keys: a primary key on id, a unique index on order_key alone.
    keys = rows(
        cur,
        """SELECT i.indisprimary, a.attname FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE i.indrelid = 'public.orders'::regclass AND i.indisunique AND i.indisvalid AND i.indnkeyatts = 1 AND i.indpred IS NULL""",
    )
    if (True, "id") not in keys or not any(column == "order_key" for _, column in keys):
        return f"orders lost its keys: unique indexes (primary, column) are {keys}"
    return None


def check_seeded(cur):
    [(count, wrong)] = rows(
        cur,
        """SELECT count(*), count(*) FILTER (WHERE amount_cents <> (split_part(order_key, '-', 2)::bigint * 7919) % 100000 + 1)
           FROM orders WHERE order_key LIKE 'seed-%'""",
    )
    if count != SEEDED_ORDERS:
        return f"{count} of the {SEEDED_ORDERS} orders that were there before are left"
    if wrong:
        return f"{wrong} of the orders that were there before have a different amount now"
    return None


def check_traffic_orders(cur, summary):
    acknowledged = sum(summary[w]["status_2xx"] for w in WINDOWS)
    unseen = sum(summary[w]["timeouts"] + summary[w]["connection_errors"] + summary[w]["unfinished"] for w in WINDOWS)
    [(stored, keys, bad_amounts)] = rows(
        cur,
        f"""SELECT count(*), count(DISTINCT order_key), count(*) FILTER (WHERE amount_cents NOT BETWEEN 100 AND 99999)
           FROM orders WHERE order_key ~ '{TRAFFIC_KEY}'""",
    )
    print(f"traffic orders: {acknowledged} acknowledged, {unseen} of unknown fate, {stored} stored under {keys} keys")
    if stored < acknowledged:
        return f"lost writes: the API acknowledged {acknowledged} orders and the table has {stored}"
    if stored > acknowledged + unseen:
        return f"{stored} orders stored, more than the {acknowledged + unseen} the traffic could have written"
    if keys != stored:
        return f"duplicated writes: {stored - keys} orders are stored twice"
    if bad_amounts:
        return f"{bad_amounts} orders of the traffic have an amount it never sent"
    return None


def failed_writes(counts):
    return counts["status_4xx"] + counts["status_5xx"] + counts["status_other"] + counts["timeouts"] + counts["connection_errors"]


def check_timeline(summary, timeline):
    for window, budget in MAX_FAILED_WRITES.items():
        failed = failed_writes(summary[window])
        print(f"{window} window: {summary[window]['sent']} writes, {failed} failed, p99 {summary[window]['p99_ms']} ms")
        if failed > budget:
            worst = sorted((s for s in timeline if s["window"] == window and failed_writes(s)), key=failed_writes, reverse=True)[:5]
            seconds = ", ".join(f"second {s['second']}: {failed_writes(s)} of {s['sent']}" for s in sorted(worst, key=lambda s: s["second"]))
            return f"{failed} writes failed in the {window} window (budget {budget}); worst seconds: {seconds}"
    return None


def check_big_order():
    key = "verify-" + secrets.token_hex(8)
    request = urllib.request.Request(f"{API}/orders/{key}?amount_cents={BIG_ORDER_CENTS}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            created = json.load(response)
    except urllib.error.HTTPError as e:
        return f"an order of {BIG_ORDER_CENTS} cents answered {e.code}: {e.read().decode(errors='replace')}"
    with urllib.request.urlopen(f"{API}/orders/{key}", timeout=5) as response:
        read = json.load(response)
    expected = {"key": key, "amount_cents": BIG_ORDER_CENTS}
    if created != expected or read != expected:
        return f"an order of {BIG_ORDER_CENTS} cents came back as {created}, then {read}"
    return None


def check():
    with open("/logs/traffic/summary.json") as f:
        summary = json.load(f)
    with open("/logs/traffic/timeline.json") as f:
        timeline = json.load(f)
    missing = [w for w in WINDOWS if w not in summary]
    if missing:
        return f"no {missing} window in the traffic record"
    conn = psycopg2.connect(DSN)
    conn.autocommit = True
    with conn.cursor() as cur:
        failure = check_schema(cur) or check_seeded(cur) or check_traffic_orders(cur, summary)
    conn.close()
    # The order through the API last: the counts above are the traffic's alone.
    return failure or check_timeline(summary, timeline) or check_big_order()


try:
    failure = check()
except Exception as e:  # the database or the API is down, or the record is missing
    failure = f"{type(e).__name__}: {e}"
print(failure or "ok")
with open("/logs/verifier/reward.txt", "w") as f:
    f.write("0" if failure else "1")
