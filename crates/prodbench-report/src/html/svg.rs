//! SVG primitives the charts are drawn with. Text is escaped here; a data mark ([`bar`]) is
//! the only element that carries `class="mark"`, `data-value` and `data-label`.

use super::format::{escape, fmt_number, truncate};

/// Characters of a chart label that fit on one line (a longer "agent (model)" is wrapped).
const LABEL_CHARS: usize = 32;
/// Height of a chart label's second line.
const LABEL_LINE: f64 = 14.0;

/// A chart: `class="chart"`, its stable `id`, and `title` for screen readers and tooltips.
pub(super) fn chart(id: &str, title: &str, width: f64, height: f64, content: &str) -> String {
    let title = escape(title);
    format!(
        "<svg class=\"chart\" id=\"{id}\" viewBox=\"0 0 {width:.0} {height:.0}\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" \
         aria-label=\"{title}\"><title>{title}</title>{content}</svg>\n"
    )
}

/// A data-bearing bar: `class="mark"` with its value and label, and a tooltip.
pub(super) fn bar(x: f64, y: f64, width: f64, height: f64, fill: &str, value: f64, label: &str) -> String {
    format!(
        "<rect class=\"mark\" x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{height:.1}\" rx=\"2\" fill=\"{fill}\" data-value=\"{value}\" \
         data-label=\"{label}\"><title>{label}: {}</title></rect>",
        width.max(0.0),
        fmt_number(Some(value), 1),
        label = escape(label),
    )
}

/// A label at `x` (`anchor`: `start` or `end`), centred on `y`, with the full text as its
/// tooltip. A label longer than [`LABEL_CHARS`] is wrapped before its parenthesised part
/// ("agent" over "(model)"); each line is truncated to fit.
pub(super) fn label(x: f64, y: f64, anchor: &str, text: &str) -> String {
    let lines = match text.find(" (") {
        Some(at) if text.chars().count() > LABEL_CHARS => vec![&text[..at], &text[at + 1..]],
        _ => vec![text],
    };
    let first_y = y + 4.0 - (lines.len() - 1) as f64 * LABEL_LINE / 2.0;
    let spans: String = lines
        .iter()
        .enumerate()
        .map(|(index, line)| format!("<tspan x=\"{x:.1}\" y=\"{:.1}\">{}</tspan>", first_y + index as f64 * LABEL_LINE, escape(&truncate(line, LABEL_CHARS))))
        .collect();
    format!("<text text-anchor=\"{anchor}\"><title>{}</title>{spans}</text>", escape(text))
}

/// A text element; `text` is escaped here.
pub(super) fn text(x: f64, y: f64, anchor: &str, class: &str, text: &str) -> String {
    let class = if class.is_empty() { String::new() } else { format!(" class=\"{class}\"") };
    format!("<text{class} x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{}</text>", y + 4.0, escape(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_agent_label_wraps_before_the_model() {
        assert_eq!(
            label(10.0, 20.0, "end", "prodbench (qwen2.5-coder-1.5b-instruct)"),
            "<text text-anchor=\"end\"><title>prodbench (qwen2.5-coder-1.5b-instruct)</title>\
             <tspan x=\"10.0\" y=\"17.0\">prodbench</tspan><tspan x=\"10.0\" y=\"31.0\">(qwen2.5-coder-1.5b-instruct)</tspan></text>",
        );
        assert_eq!(label(10.0, 20.0, "start", "oracle"), "<text text-anchor=\"start\"><title>oracle</title><tspan x=\"10.0\" y=\"24.0\">oracle</tspan></text>");
    }

    #[test]
    fn a_bar_is_a_mark_with_its_value_and_escaped_label() {
        let bar = bar(1.0, 2.0, -3.0, 4.0, "#000", 12.5, "a<b");
        assert!(bar.starts_with("<rect class=\"mark\" x=\"1.0\" y=\"2.0\" width=\"0.0\""), "{bar}");
        assert!(bar.contains("data-value=\"12.5\" data-label=\"a&lt;b\"><title>a&lt;b: 12.5</title>"), "{bar}");
    }
}
