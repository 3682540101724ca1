"""Calls the service over HTTP and prints a flat JSON object of scores."""

import json
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"


def get(path):
    """Returns (status, body), or (None, error text) when the request fails."""
    try:
        with urllib.request.urlopen(BASE + path, timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")
    except Exception as err:  # connection refused, timeout, ...
        return None, repr(err)


def check(name, path, status, body):
    got_status, got_body = get(path)
    ok = got_status == status and (body is None or got_body.strip() == body)
    print(f"{'PASS' if ok else 'FAIL'} {name}: GET {path} -> {got_status} {got_body!r}", file=sys.stderr)
    return ok


def main():
    with open("/tests/greeting.txt", encoding="utf-8") as f:
        greeting = f.read().strip()
    health = check("health", "/health", 200, "ok")
    greeting_ok = check("greeting", "/greeting", 200, greeting)
    sum_cases = [
        ("/sum?a=2&b=3", "5"),
        ("/sum?a=10&b=-4", "6"),
        ("/sum?a=0&b=0", "0"),
        ("/sum?a=-7&b=-8", "-15"),
        ("/sum?a=123456789&b=987654321", "1111111110"),
    ]
    sum_ok = all([check("sum", path, 200, want) for path, want in sum_cases])
    errors = all([
        check("bad request", "/sum?a=x&b=1", 400, None),
        check("bad request", "/sum?a=1", 400, None),
    ])
    scores = {
        "health": float(health),
        "greeting": float(greeting_ok),
        "sum": float(sum_ok),
        "errors": float(errors),
    }
    scores["reward"] = 1.0 if all(v == 1.0 for v in scores.values()) else 0.0
    print(json.dumps(scores))


if __name__ == "__main__":
    main()
