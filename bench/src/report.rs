//! Markdown for the report: tables, durations in readable units, ratios and verdicts.

use std::fmt::Write;

#[derive(Default)]
pub struct Report {
    text: String,
}

impl Report {
    pub fn heading(&mut self, level: usize, title: &str) {
        let _ = write!(self.text, "\n{} {title}\n\n", "#".repeat(level));
    }
    pub fn para(&mut self, text: &str) {
        let _ = write!(self.text, "{text}\n\n");
    }
    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) {
        let _ = writeln!(self.text, "| {} |", headers.join(" | "));
        let align: Vec<&str> = headers
            .iter()
            .enumerate()
            .map(|(i, _)| if i == 0 { "---" } else { "---:" })
            .collect();
        let _ = writeln!(self.text, "| {} |", align.join(" | "));
        for row in rows {
            let _ = writeln!(self.text, "| {} |", row.join(" | "));
        }
        self.text.push('\n');
    }
    pub fn into_string(self) -> String {
        self.text
    }
}

/// A duration given in microseconds, in the unit that reads best.
pub fn us(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v < 1_000.0 {
        format!("{v:.0} µs")
    } else if v < 1_000_000.0 {
        format!("{:.1} ms", v / 1e3)
    } else {
        format!("{:.2} s", v / 1e6)
    }
}

pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / 1024.0 / 1024.0)
}

/// `a / b`, e.g. `1.23x`.
pub fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a.is_finite() && b.is_finite() {
        format!("{:.2}x", a / b)
    } else {
        "–".into()
    }
}

pub fn verdict(ok: bool) -> String {
    if ok { "**meets**".into() } else { "**misses**".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_tables() {
        assert_eq!(us(850.0), "850 µs");
        assert_eq!(us(12_345.0), "12.3 ms");
        assert_eq!(us(2_500_000.0), "2.50 s");
        assert_eq!(ratio(3.0, 2.0), "1.50x");
        assert_eq!(ratio(1.0, 0.0), "–");
        let mut r = Report::default();
        r.table(&["a", "b"], &[vec!["x".into(), "1".into()]]);
        assert_eq!(r.into_string(), "| a | b |\n| --- | ---: |\n| x | 1 |\n\n");
    }
}
