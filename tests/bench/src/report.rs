//! Collects every run's metrics and prints, per scenario and metric, the median with the
//! min–max range for each broker and the ratio midge / Mosquitto of the medians.

use std::fmt::Write;

use crate::broker::Kind;
use crate::scenario::Outcome;

#[derive(Debug)]
struct Row {
    metric: &'static str,
    /// Values of every round: midge's, then Mosquitto's.
    values: [Vec<f64>; 2],
}

#[derive(Debug)]
struct Table {
    scenario: String,
    description: String,
    rows: Vec<Row>,
}

#[derive(Debug, Default)]
pub struct Report {
    tables: Vec<Table>,
    pub failures: Vec<String>,
}

fn column(kind: Kind) -> usize {
    match kind {
        Kind::Midge => 0,
        Kind::Mosquitto => 1,
    }
}

impl Report {
    /// Records one run; failures are kept with the scenario, round and broker named.
    pub fn add(
        &mut self,
        scenario: &str,
        description: &str,
        kind: Kind,
        round: usize,
        outcome: Outcome,
    ) {
        let table = match self.tables.iter().position(|t| t.scenario == scenario) {
            Some(i) => &mut self.tables[i],
            None => {
                self.tables.push(Table {
                    scenario: scenario.to_owned(),
                    description: description.to_owned(),
                    rows: Vec::new(),
                });
                self.tables.last_mut().expect("just pushed")
            }
        };
        for (metric, value) in outcome.metrics {
            let row = match table.rows.iter().position(|r| r.metric == metric) {
                Some(i) => &mut table.rows[i],
                None => {
                    table.rows.push(Row {
                        metric,
                        values: [Vec::new(), Vec::new()],
                    });
                    table.rows.last_mut().expect("just pushed")
                }
            };
            row.values[column(kind)].push(value);
        }
        for why in outcome.failures {
            self.fail(format!("{scenario}, round {round}, {kind}: {why}"));
        }
    }

    pub fn fail(&mut self, why: String) {
        self.failures.push(why);
    }

    /// The results as Markdown tables.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for t in &self.tables {
            let _ = writeln!(out, "### {}\n\n{}\n", t.scenario, t.description);
            let _ = writeln!(
                out,
                "| metric | midge median (min–max) | Mosquitto median (min–max) | midge / Mosquitto |"
            );
            let _ = writeln!(out, "|---|---|---|---|");
            for r in &t.rows {
                let [m, q] = [&r.values[0], &r.values[1]].map(|v| summary(v));
                let ratio = match (m, q) {
                    (Some(m), Some(q)) if q.0 != 0.0 => format!("{:.2}", m.0 / q.0),
                    _ => "–".to_owned(),
                };
                let cell = |s: Option<(f64, f64, f64)>| match s {
                    Some((med, min, max)) => {
                        format!("{} ({}–{})", number(med), number(min), number(max))
                    }
                    None => "–".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {ratio} |",
                    r.metric,
                    cell(m),
                    cell(q)
                );
            }
            out.push('\n');
        }
        if !self.failures.is_empty() {
            let _ = writeln!(out, "### FAILURES\n");
            for f in &self.failures {
                let _ = writeln!(out, "- {f}");
            }
        }
        out
    }
}

/// Median, min and max (the median of an even count is the mean of the middle two).
fn summary(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    Some((median, v[0], v[n - 1]))
}

/// Three significant digits or so, without exponents.
fn number(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_ranges_and_ratios() {
        assert_eq!(summary(&[3.0, 1.0, 2.0]), Some((2.0, 1.0, 3.0)));
        assert_eq!(summary(&[4.0, 1.0]), Some((2.5, 1.0, 4.0)));
        assert_eq!(summary(&[]), None);
        let mut report = Report::default();
        for (kind, v) in [
            (Kind::Midge, 200.0),
            (Kind::Mosquitto, 100.0),
            (Kind::Midge, 400.0),
        ] {
            let mut o = Outcome::default();
            o.metric("throughput [msg/s]", v);
            report.add("fanin-q0", "test", kind, 1, o);
        }
        let md = report.markdown();
        assert!(
            md.contains("| throughput [msg/s] | 300 (200–400) | 100 (100–100) | 3.00 |"),
            "{md}"
        );
    }
}
