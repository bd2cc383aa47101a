//! The report's chart as a hand-written SVG: the funnel (log scale), answers per second by who
//! answered, and latency p50 / p99 over time, with the sale's start and the first `sold_out` marked.
//!
//! Written by hand because it is three simple panels of lines and bars: a plotting crate would
//! bring a font stack and many dependencies to the simulator for no gain. The output is plain
//! SVG 1.1 that browsers and GitHub render.

use std::fmt::Write as _;

use crate::report::Report;

const W: f64 = 1000.0;
const LEFT: f64 = 190.0;
const RIGHT: f64 = 960.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A log10 axis from `lo` to `hi` onto pixels `a..b`.
struct LogAxis {
    lo: f64,
    hi: f64,
    a: f64,
    b: f64,
}

impl LogAxis {
    fn new(lo: f64, hi: f64, a: f64, b: f64) -> LogAxis {
        let lo = lo.max(1e-3);
        LogAxis { lo, hi: hi.max(lo * 10.0), a, b }
    }
    fn map(&self, v: f64) -> f64 {
        let v = v.max(self.lo);
        let f = (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10());
        self.a + f.clamp(0.0, 1.0) * (self.b - self.a)
    }
    /// Powers of ten inside the axis.
    fn ticks(&self) -> Vec<f64> {
        let mut v = Vec::new();
        let mut p = 10f64.powf(self.lo.log10().ceil());
        while p <= self.hi * 1.0001 {
            v.push(p);
            p *= 10.0;
        }
        v
    }
}

fn fmt_tick(v: f64) -> String {
    if v >= 1000.0 {
        format!("{}k", v / 1000.0)
    } else if v >= 1.0 {
        format!("{v}")
    } else {
        format!("{v:.1}")
    }
}

fn polyline(out: &mut String, pts: &[(f64, f64)], color: &str, width: f64) {
    if pts.is_empty() {
        return;
    }
    let d: Vec<String> = pts.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    let _ = writeln!(out, r#"<polyline fill="none" stroke="{color}" stroke-width="{width}" points="{}"/>"#, d.join(" "));
}

fn legend(out: &mut String, x: f64, y: f64, items: &[(&str, &str)]) {
    let mut x = x;
    for (color, text) in items {
        let _ = writeln!(out, r#"<rect x="{x}" y="{}" width="14" height="4" fill="{color}"/><text x="{}" y="{y}" class="s">{}</text>"#, y - 5.0, x + 18.0, esc(text));
        x += 26.0 + 7.0 * text.len() as f64;
    }
}

/// Render the report's chart.
pub fn render(r: &Report) -> String {
    let mut s = String::new();
    let h = 780.0;
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="Helvetica, Arial, sans-serif">
<style>.t{{font-size:16px;font-weight:bold}} .s{{font-size:12px;fill:#333}} .g{{stroke:#ddd;stroke-width:1}} .a{{stroke:#444;stroke-width:1}}</style>
<rect width="{W}" height="{h}" fill="white"/>"#
    );
    let f = &r.funnel;
    let _ = writeln!(
        s,
        r#"<text x="20" y="26" class="t">{}</text>"#,
        esc(&format!("Flash sale `{}`: {} shoppers, {} units, {} requests ({:?} mode)", r.scenario, r.shoppers, f.stock_total, f.requests, r.mode))
    );

    // Panel 1: the funnel, log scale.
    let _ = writeln!(s, r#"<text x="20" y="58" class="t">Funnel (log scale)</text>"#);
    let bars = [
        ("requests at the edge", f.requests, "#4c78a8"),
        ("answered at the edge", f.answered_at_edge, "#72b7b2"),
        ("reached the origin", f.origin_counted, "#f58518"),
        ("orders committed", f.orders, "#54a24b"),
        ("units on sale", f.stock_total, "#9d9d9d"),
        ("oversold", f.oversold, "#e45756"),
    ];
    let max = bars.iter().map(|b| b.1).max().unwrap_or(1).max(10) as f64;
    let ax = LogAxis::new(1.0, max, LEFT, RIGHT - 80.0);
    for t in ax.ticks() {
        let x = ax.map(t);
        let _ = writeln!(s, r#"<line x1="{x:.1}" y1="70" x2="{x:.1}" y2="{}" class="g"/><text x="{x:.1}" y="{}" class="s" text-anchor="middle">{}</text>"#, 70.0 + 26.0 * bars.len() as f64, 84.0 + 26.0 * bars.len() as f64, fmt_tick(t));
    }
    for (i, (name, v, color)) in bars.iter().enumerate() {
        let y = 72.0 + 26.0 * i as f64;
        let x2 = if *v == 0 { LEFT } else { ax.map(*v as f64).max(LEFT + 1.0) };
        let share = if f.requests > 0 && i > 0 && i < 4 { format!(" ({:.2}%)", 100.0 * *v as f64 / f.requests as f64) } else { String::new() };
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" class="s" text-anchor="end">{}</text><rect x="{LEFT}" y="{y}" width="{:.1}" height="20" fill="{color}"/><text x="{:.1}" y="{}" class="s">{}{}</text>"#,
            LEFT - 8.0,
            y + 14.0,
            esc(name),
            x2 - LEFT,
            x2 + 6.0,
            y + 14.0,
            v,
            share
        );
    }

    // Panels 2 and 3 share the time axis (seconds from the sale's start).
    let tl = &r.timeline;
    let (t_lo, t_hi) = match (tl.first(), tl.last()) {
        (Some(a), Some(b)) => (a.t_ms as f64 / 1000.0, (b.t_ms as f64 + 100.0) / 1000.0),
        _ => (0.0, 1.0),
    };
    let span = (t_hi - t_lo).max(0.1);
    let tx = |t: f64| LEFT + (t - t_lo) / span * (RIGHT - LEFT);
    let time_axis = |s: &mut String, y0: f64, y1: f64| {
        let step = if span > 40.0 { 10.0 } else if span > 12.0 { 2.0 } else { 1.0 };
        let mut t = (t_lo / step).ceil() * step;
        while t <= t_hi {
            let x = tx(t);
            let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" class="g"/><text x="{x:.1}" y="{}" class="s" text-anchor="middle">{t:+}s</text>"#, y1 + 14.0);
            t += step;
        }
        let _ = writeln!(s, r#"<line x1="{LEFT}" y1="{y1}" x2="{RIGHT}" y2="{y1}" class="a"/>"#);
        let mut marks = vec![(0i64, "start", "#000", 12.0)];
        if let Some(ms) = r.first_sold_out_ms {
            marks.push((ms, "sold out", "#e45756", 26.0));
        }
        for (ms, text, color, dy) in marks {
            let x = tx(ms as f64 / 1000.0);
            let _ = writeln!(s, r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="{color}" stroke-dasharray="4,3"/><text x="{:.1}" y="{}" class="s" fill="{color}">{text}</text>"#, x + 3.0, y0 + dy);
        }
    };

    // Panel 2: answers per second by who answered.
    let (y0, y1) = (300.0, 490.0);
    let _ = writeln!(s, r#"<text x="20" y="{}" class="t">Answers per second (log scale), by who answered</text>"#, y0 - 20.0);
    let per_s = |n: u64| n as f64 * 10.0;
    let peak = tl.iter().map(|b| per_s(b.requests)).fold(10.0, f64::max);
    let ay = LogAxis::new(1.0, peak, y1, y0);
    for t in ay.ticks() {
        let y = ay.map(t);
        let _ = writeln!(s, r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" class="g"/><text x="{}" y="{:.1}" class="s" text-anchor="end">{}/s</text>"#, LEFT - 6.0, y + 4.0, fmt_tick(t));
    }
    time_axis(&mut s, y0, y1);
    let series = |f: &dyn Fn(&crate::report::Slice) -> u64| -> Vec<(f64, f64)> {
        tl.iter().filter(|b| f(b) > 0).map(|b| (tx((b.t_ms as f64 + 50.0) / 1000.0), ay.map(per_s(f(b))))).collect()
    };
    polyline(&mut s, &series(&|b| b.requests), "#4c78a8", 1.5);
    polyline(&mut s, &series(&|b| b.by_edge), "#72b7b2", 1.5);
    polyline(&mut s, &series(&|b| b.by_origin), "#f58518", 2.0);
    legend(&mut s, LEFT, y1 + 30.0, &[("#4c78a8", "all requests"), ("#72b7b2", "answered by the edge"), ("#f58518", "answered by the origin")]);

    // Panel 3: latency.
    let (y0, y1) = (560.0, 730.0);
    let _ = writeln!(s, r#"<text x="20" y="{}" class="t">Latency per 100 ms (ms, log scale)</text>"#, y0 - 20.0);
    let hi = tl.iter().filter_map(|b| b.p99_ms).fold(1.0, f64::max);
    let ly = LogAxis::new(0.1, hi, y1, y0);
    for t in ly.ticks() {
        let y = ly.map(t);
        let _ = writeln!(s, r#"<line x1="{LEFT}" y1="{y:.1}" x2="{RIGHT}" y2="{y:.1}" class="g"/><text x="{}" y="{:.1}" class="s" text-anchor="end">{} ms</text>"#, LEFT - 6.0, y + 4.0, fmt_tick(t));
    }
    time_axis(&mut s, y0, y1);
    let lat = |f: &dyn Fn(&crate::report::Slice) -> Option<f64>| -> Vec<(f64, f64)> { tl.iter().filter_map(|b| f(b).map(|v| (tx((b.t_ms as f64 + 50.0) / 1000.0), ly.map(v)))).collect() };
    polyline(&mut s, &lat(&|b| b.p50_ms), "#54a24b", 1.5);
    polyline(&mut s, &lat(&|b| b.p99_ms), "#e45756", 1.5);
    legend(&mut s, LEFT, y1 + 28.0, &[("#54a24b", "p50"), ("#e45756", "p99")]);
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_maps_ends_and_ticks() {
        let a = LogAxis::new(1.0, 1000.0, 0.0, 300.0);
        assert!((a.map(1.0) - 0.0).abs() < 1e-9);
        assert!((a.map(1000.0) - 300.0).abs() < 1e-9);
        assert!((a.map(10.0) - 100.0).abs() < 1e-9);
        assert_eq!(a.ticks(), vec![1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(esc("a<b&c"), "a&lt;b&amp;c");
    }
}
