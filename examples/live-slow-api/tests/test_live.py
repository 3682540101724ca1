"""The service still answers correctly, and the grading window met the latency budget."""
import json
import urllib.request

BUDGET_P99_MS = 500.0
MAX_ERROR_RATE = 0.01


def check():
    with urllib.request.urlopen("http://127.0.0.1:8080/items/42", timeout=5) as response:
        body = json.load(response)
    if body != {"id": 42, "name": "item-42"}:
        return f"/items/42 answered {body}"
    with open("/logs/traffic/summary.json") as f:
        windows = json.load(f)
    grading = windows.get("grading")
    if grading is None:
        return "no grading window in the traffic record"
    p99, errors = grading["p99_ms"], grading["error_rate"]
    print(f"grading window: p99 {p99} ms, error rate {errors}, sent {grading['sent']}")
    if grading["completed"] == 0 or p99 is None:
        return "no request completed in the grading window"
    if p99 >= BUDGET_P99_MS:
        return f"p99 {p99} ms is over the {BUDGET_P99_MS} ms budget"
    if errors is None or errors > MAX_ERROR_RATE:
        return f"error rate {errors} is over {MAX_ERROR_RATE}"
    return None


try:
    failure = check()
except Exception as e:  # the service is down, or the record is missing
    failure = f"{type(e).__name__}: {e}"
print(failure or "ok")
with open("/logs/verifier/reward.txt", "w") as f:
    f.write("0" if failure else "1")
