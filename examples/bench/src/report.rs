//! `report`: the ours-vs-other table, with ratios, from collected JSON summaries.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cli::ReportArgs;
use crate::plot;

/// Whether a larger value of a metric is better.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// One row of the table: a metric read from a summary by JSON pointer.
struct Metric {
    name: &'static str,
    pointer: &'static str,
    better: Better,
}

const FANOUT: &[Metric] = &[
    Metric {
        name: "delivered msgs/s",
        pointer: "/delivered_per_s",
        better: Better::Higher,
    },
    Metric {
        name: "sent msgs/s",
        pointer: "/sent_per_s",
        better: Better::Higher,
    },
    Metric {
        name: "loss %",
        pointer: "/loss_pct",
        better: Better::Lower,
    },
    Metric {
        name: "latency p50 µs",
        pointer: "/latency_us/p50",
        better: Better::Lower,
    },
    Metric {
        name: "latency p99 µs",
        pointer: "/latency_us/p99",
        better: Better::Lower,
    },
    Metric {
        name: "latency p99.9 µs",
        pointer: "/latency_us/p99_9",
        better: Better::Lower,
    },
    Metric {
        name: "latency max µs",
        pointer: "/latency_us/max",
        better: Better::Lower,
    },
];

const CONNECTIONS: &[Metric] = &[
    Metric {
        name: "sessions up",
        pointer: "/established",
        better: Better::Higher,
    },
    Metric {
        name: "server RSS KiB/session",
        pointer: "/rss_per_session_kib",
        better: Better::Lower,
    },
    Metric {
        name: "sessions opened/s",
        pointer: "/sessions_per_s",
        better: Better::Higher,
    },
    Metric {
        name: "open p99 µs",
        pointer: "/establish_latency_us/p99",
        better: Better::Lower,
    },
];

const HANDLER: &[Metric] = &[
    Metric {
        name: "handler round trip p50 µs",
        pointer: "/handler_latency_us/p50",
        better: Better::Lower,
    },
    Metric {
        name: "plain round trip p50 µs",
        pointer: "/plain_latency_us/p50",
        better: Better::Lower,
    },
    Metric {
        name: "handler round trip p99 µs",
        pointer: "/handler_latency_us/p99",
        better: Better::Lower,
    },
    Metric {
        name: "plain round trip p99 µs",
        pointer: "/plain_latency_us/p99",
        better: Better::Lower,
    },
    Metric {
        name: "handler/plain mean",
        pointer: "/ratio_mean",
        better: Better::Lower,
    },
    Metric {
        name: "handler/plain p99",
        pointer: "/ratio_p99",
        better: Better::Lower,
    },
];

/// The summaries of one scenario, by label, in the order read.
pub struct Scenario {
    /// The scenario name.
    pub name: String,
    /// The mode of its runs.
    pub mode: String,
    /// Runs by label.
    pub runs: BTreeMap<String, Vec<Value>>,
}

/// Reads every JSON object line of `inputs` that has a `mode`, grouped by scenario.
pub fn load(inputs: &[std::path::PathBuf]) -> Result<Vec<Scenario>, String> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    for path in inputs {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        for line in text.lines().filter(|l| l.trim_start().starts_with('{')) {
            let Ok(v) = serde_json::from_str::<Value>(line) else {
                continue;
            };
            let Some(mode) = v["mode"].as_str().map(str::to_owned) else {
                continue;
            };
            let name = v["scenario"].as_str().unwrap_or(&mode).to_owned();
            let label = v["label"].as_str().unwrap_or_default().to_owned();
            let idx = match scenarios.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    scenarios.push(Scenario {
                        name,
                        mode,
                        runs: BTreeMap::new(),
                    });
                    scenarios.len() - 1
                }
            };
            scenarios[idx].runs.entry(label).or_default().push(v);
        }
    }
    Ok(scenarios)
}

/// The median of a metric over runs (the value itself for one run).
fn median(runs: &[Value], pointer: &str) -> Option<f64> {
    let mut xs: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.pointer(pointer).and_then(Value::as_f64))
        .collect();
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let mid = xs.len() / 2;
    Some(if xs.len() % 2 == 1 {
        xs[mid]
    } else {
        (xs[mid - 1] + xs[mid]) / 2.0
    })
}

fn fmt_value(x: Option<f64>) -> String {
    match x {
        None => "-".into(),
        Some(x) if x.abs() >= 1000.0 => format!("{x:.0}"),
        Some(x) if x.fract() == 0.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.2}"),
    }
}

/// Renders the comparison as a Markdown table.
pub fn table(scenarios: &[Scenario], ours: &str, other: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "| scenario | metric | {ours} | {other} | {ours} ÷ {other} | {ours} better by |\n"
    ));
    out.push_str("|---|---|---:|---:|---:|---:|\n");
    for s in scenarios {
        let metrics = match s.mode.as_str() {
            "fanout" => FANOUT,
            "connections" => CONNECTIONS,
            "handler" => HANDLER,
            _ => continue,
        };
        let empty = Vec::new();
        let a = s.runs.get(ours).unwrap_or(&empty);
        let b = s.runs.get(other).unwrap_or(&empty);
        for m in metrics {
            let x = median(a, m.pointer);
            let y = median(b, m.pointer);
            let (ratio, better) = match (x, y) {
                (Some(x), Some(y)) if x > 0.0 && y > 0.0 => {
                    let adv = match m.better {
                        Better::Higher => x / y,
                        Better::Lower => y / x,
                    };
                    (format!("{:.2}", x / y), format!("{adv:.2}×"))
                }
                _ => ("-".into(), "-".into()),
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {ratio} | {better} |\n",
                s.name,
                m.name,
                fmt_value(x),
                fmt_value(y)
            ));
        }
    }
    out
}

/// Runs `report`.
pub fn run(args: &ReportArgs) -> Result<(), String> {
    let scenarios = load(&args.inputs)?;
    if scenarios.is_empty() {
        return Err("no JSON summaries found".into());
    }
    print!("{}", table(&scenarios, &args.ours, &args.other));
    if let Some(png) = &args.plot {
        plot::latency_percentiles(&scenarios, png)?;
        println!("\nlatency plot: {}", png.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_has_ratios_in_the_right_direction() {
        let dir = std::env::temp_dir().join(format!("bench-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("runs.jsonl");
        std::fs::write(
            &file,
            concat!(
                "progress noise\n",
                r#"{"mode":"fanout","scenario":"s1","label":"ours","delivered_per_s":300.0,"loss_pct":0.0,"latency_us":{"p50":10.0}}"#,
                "\n",
                r#"{"mode":"fanout","scenario":"s1","label":"rabbitmq","delivered_per_s":100.0,"loss_pct":0.0,"latency_us":{"p50":40.0}}"#,
                "\n"
            ),
        )
        .unwrap();
        let scenarios = load(&[file]).unwrap();
        let t = table(&scenarios, "ours", "rabbitmq");
        assert!(
            t.contains("| s1 | delivered msgs/s | 300 | 100 | 3.00 | 3.00× |"),
            "{t}"
        );
        assert!(
            t.contains("| s1 | latency p50 µs | 10 | 40 | 0.25 | 4.00× |"),
            "{t}"
        );
        assert!(t.contains("| s1 | loss % | 0 | 0 | - | - |"), "{t}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
