//! The human form of `wirelint exchanges`: one line per exchange.

use std::fmt::Write as _;

use crate::http::Exchange;

/// `  frame 4` or `  frames 4–9` (and `  HTTP/2 stream 3`): where to look in the capture.
pub fn frames_label(ex: &Exchange) -> String {
    let mut label = match ex.frame_span() {
        Some((a, b)) if a == b => format!("  frame {a}"),
        Some((a, b)) => format!("  frames {a}–{b}"),
        None => String::new(),
    };
    if let Some(id) = ex.stream_id {
        let _ = write!(label, "  HTTP/2 stream {id}");
    }
    label
}

/// `#3 198.51.100.7:51234 → 192.0.2.10:80  GET example.com/index.html → 200 OK (1234 B)  frames 4–9  [gap]`
pub fn exchange_line(ex: &Exchange) -> String {
    let mut line = format!(
        "#{} {} → {}  ",
        ex.index, ex.connection.client, ex.connection.server
    );
    match &ex.request {
        Some(req) => {
            let host = req.host().unwrap_or("");
            let _ = write!(
                line,
                "{} {}{}",
                req.method().unwrap_or("?"),
                host,
                req.target().unwrap_or("")
            );
        }
        None => line.push_str("(no request)"),
    }
    match &ex.response {
        Some(resp) => {
            let _ = write!(
                line,
                " → {} {} ({} B)",
                resp.status().unwrap_or(0),
                resp.reason().unwrap_or(""),
                resp.body.size
            );
        }
        None => line.push_str(" → (no response)"),
    }
    line.push_str(&frames_label(ex));
    let anomalies = ex.anomaly_names();
    if !anomalies.is_empty() {
        let _ = write!(line, "  [{}]", anomalies.join(", "));
    }
    line
}
