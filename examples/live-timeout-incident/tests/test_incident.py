"""The API answers as before when the backend is healthy, and held its budget while the
backend was 500 ms slow (the grading window)."""
import json
import urllib.request

BUDGET_P99_MS = 1000.0
MAX_ERROR_RATE = 0.01


def check():
    with urllib.request.urlopen("http://127.0.0.1:8080/quote/7", timeout=5) as response:
        body = json.load(response)
    if body != {"id": 7, "price": 107, "stale": False}:
        return f"/quote/7 answered {body} with a healthy backend"
    with open("/logs/traffic/summary.json") as f:
        grading = json.load(f).get("grading")
    if grading is None or grading["completed"] == 0:
        return "no completed request in the grading window"
    p99, errors = grading["p99_ms"], grading["error_rate"]
    print(f"grading window (backend +2 s): p99 {p99} ms, error rate {errors}, sent {grading['sent']}")
    if p99 is None or p99 >= BUDGET_P99_MS:
        return f"p99 {p99} ms is over the {BUDGET_P99_MS} ms budget"
    if errors is None or errors > MAX_ERROR_RATE:
        return f"error rate {errors} is over {MAX_ERROR_RATE}"
    return None


try:
    failure = check()
except Exception as e:
    failure = f"{type(e).__name__}: {e}"
print(failure or "ok")
with open("/logs/verifier/reward.txt", "w") as f:
    f.write("0" if failure else "1")
