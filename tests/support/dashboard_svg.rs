//! Draws a Grafana-style picture of a dashboard from what a real Prometheus
//! answered for its panels' queries: one panel per query, a line per
//! series, the panel's title, the value range and a legend. The README's
//! picture of `dashboards/agents.json` is made with it (see
//! `scripts/dashboard-picture.sh`); Grafana is not needed.

use std::fmt::Write;

/// One line of a panel.
pub struct Series {
    /// The legend: the series' labels.
    pub label: String,
    /// `(unix seconds, value)`.
    pub points: Vec<(f64, f64)>,
}

/// One panel: its title and its series.
pub struct Panel {
    /// The panel's title.
    pub title: String,
    /// What its query returned.
    pub series: Vec<Series>,
}

const W: f64 = 420.0;
const H: f64 = 230.0;
const GAP: f64 = 10.0;
const COLORS: &[&str] = &["#73bf69", "#f2cc0c", "#5794f2", "#ff780a", "#b877d9", "#f2495c"];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A value as a dashboard shows it: 3 significant digits, SI suffix.
pub fn short(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = match () {
        _ if a == 0.0 => (v, ""),
        _ if a >= 1e6 => (v / 1e6, "M"),
        _ if a >= 1e3 => (v / 1e3, "k"),
        _ if a >= 1.0 => (v, ""),
        _ if a >= 1e-3 => (v * 1e3, "m"),
        _ if a >= 1e-6 => (v * 1e6, "µ"),
        _ => (v * 1e9, "n"),
    };
    let digits = if scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    format!("{scaled:.digits$}{suffix}")
}

/// The labels of a Prometheus series as a legend entry.
pub fn legend(metric: &serde_json::Value) -> String {
    let Some(map) = metric.as_object() else { return String::new() };
    let parts: Vec<String> = map
        .iter()
        .filter(|(k, _)| k.as_str() != "__name__")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if parts.is_empty() { "value".into() } else { parts.join(", ") }
}

/// The dashboard as an SVG document: `columns` panels a row, under `title`.
pub fn render(title: &str, panels: &[Panel], columns: usize) -> String {
    let columns = columns.max(1);
    let rows = panels.len().div_ceil(columns);
    let width = columns as f64 * (W + GAP) + GAP;
    let height = 40.0 + rows as f64 * (H + GAP) + GAP;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="Inter, Helvetica, Arial, sans-serif">
<rect width="100%" height="100%" fill="#111217"/>
<text x="{GAP}" y="27" fill="#ccccdc" font-size="18">{}</text>
"##,
        escape(title)
    );
    for (i, panel) in panels.iter().enumerate() {
        let x0 = GAP + (i % columns) as f64 * (W + GAP);
        let y0 = 40.0 + (i / columns) as f64 * (H + GAP);
        draw_panel(&mut svg, panel, x0, y0);
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_panel(svg: &mut String, panel: &Panel, x0: f64, y0: f64) {
    let _ = write!(
        svg,
        r##"<rect x="{x0}" y="{y0}" width="{W}" height="{H}" rx="3" fill="#181b1f" stroke="#2c3235"/>
<text x="{}" y="{}" fill="#ccccdc" font-size="13" font-weight="500">{}</text>
"##,
        x0 + 10.0,
        y0 + 20.0,
        escape(&panel.title)
    );
    // The plot area, leaving room for the axis labels and the legend.
    let (px, py, pw, ph) = (x0 + 50.0, y0 + 32.0, W - 62.0, H - 92.0);
    let all = || panel.series.iter().flat_map(|s| s.points.iter());
    let (mut t_min, mut t_max, mut v_min, mut v_max) = (f64::MAX, f64::MIN, 0.0_f64, f64::MIN);
    for &(t, v) in all() {
        t_min = t_min.min(t);
        t_max = t_max.max(t);
        v_min = v_min.min(v);
        v_max = v_max.max(v);
    }
    if t_min > t_max {
        let _ = writeln!(
            svg,
            r##"<text x="{}" y="{}" fill="#8e8e8e" font-size="12">No data</text>"##,
            px + pw / 2.0 - 25.0,
            py + ph / 2.0
        );
        return;
    }
    if v_max <= v_min {
        v_max = v_min + 1.0;
    }
    let t_span = (t_max - t_min).max(1.0);
    for k in 0..=2 {
        let v = v_min + (v_max - v_min) * k as f64 / 2.0;
        let y = py + ph - ph * k as f64 / 2.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{px}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#2c3235"/><text x="{}" y="{:.1}" fill="#8e8e8e" font-size="10" text-anchor="end">{}</text>"##,
            px + pw,
            px - 6.0,
            y + 3.0,
            short(v)
        );
    }
    let _ = writeln!(
        svg,
        r##"<text x="{px}" y="{}" fill="#8e8e8e" font-size="10">-{}s</text><text x="{}" y="{}" fill="#8e8e8e" font-size="10" text-anchor="end">now</text>"##,
        py + ph + 14.0,
        t_span.round(),
        px + pw,
        py + ph + 14.0
    );
    for (n, s) in panel.series.iter().enumerate() {
        let color = COLORS[n % COLORS.len()];
        let points: Vec<String> = s
            .points
            .iter()
            .map(|&(t, v)| {
                let x = px + pw * (t - t_min) / t_span;
                let y = py + ph - ph * (v - v_min) / (v_max - v_min);
                format!("{x:.1},{y:.1}")
            })
            .collect();
        if points.len() == 1 {
            let (x, y) = points[0].split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(svg, r##"<circle cx="{x}" cy="{y}" r="2.5" fill="{color}"/>"##);
        } else {
            let _ = writeln!(
                svg,
                r##"<polyline fill="none" stroke="{color}" stroke-width="1.6" points="{}"/>"##,
                points.join(" ")
            );
        }
        if n < 3 {
            let ly = py + ph + 30.0 + n as f64 * 13.0;
            let mut label = s.label.clone();
            if label.chars().count() > 58 {
                label = label.chars().take(57).collect::<String>() + "…";
            }
            let _ = writeln!(
                svg,
                r##"<rect x="{}" y="{}" width="10" height="3" fill="{color}"/><text x="{}" y="{}" fill="#ccccdc" font-size="10">{}</text>"##,
                x0 + 12.0,
                ly - 4.0,
                x0 + 27.0,
                ly,
                escape(&label)
            );
        }
    }
}
