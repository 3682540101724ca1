//! The single-file HTML report (placeholder until the renderer lands).

/// Renders a report's JSON as one self-contained HTML page.
pub fn render(report: &serde_json::Value) -> String {
    format!("<!doctype html><pre>{}</pre>", report)
}
