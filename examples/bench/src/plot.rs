//! The latency-percentile plot: one panel per scenario, one curve per server.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::FontStyle;
use serde_json::Value;

use crate::report::Scenario;
use crate::stats::fmt_us;

/// TrueType fonts tried for the text, in order (Debian's fonts-dejavu-core first).
const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
/// Furthest percentile drawn, in nines (4.5: 99.997 %).
const MAX_NINES: f64 = 4.5;

struct Series {
    name: String,
    points: Vec<(f64, f64)>,
}

struct Panel {
    title: String,
    series: Vec<Series>,
}

/// `p` percent as "nines": 90 → 1, 99 → 2, 99.9 → 3.
fn nines(p: f64) -> f64 {
    if p >= 100.0 {
        MAX_NINES
    } else {
        (-(1.0 - p / 100.0).log10()).min(MAX_NINES)
    }
}

fn nines_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let digits = (x.round() as usize).saturating_sub(2);
    format!("{p:.digits$}%")
}

fn curve(v: &Value) -> Vec<(f64, f64)> {
    v.get("curve")
        .and_then(Value::as_array)
        .map(|pts| {
            pts.iter()
                .filter_map(|pt| Some((nines(pt.get(0)?.as_f64()?), pt.get(1)?.as_f64()?)))
                .filter(|&(_, us)| us > 0.0)
                .collect()
        })
        .unwrap_or_default()
}

fn panels(scenarios: &[Scenario]) -> Vec<Panel> {
    let mut out = Vec::new();
    for s in scenarios {
        let mut series = Vec::new();
        for (label, runs) in &s.runs {
            // The first run of each label stands for it.
            let Some(run) = runs.first() else { continue };
            let label = if label.is_empty() { "run" } else { label };
            match s.mode.as_str() {
                "fanout" => series.push(Series {
                    name: label.to_owned(),
                    points: curve(&run["latency_us"]),
                }),
                "handler" => {
                    series.push(Series {
                        name: format!("{label}: /app handler"),
                        points: curve(&run["handler_latency_us"]),
                    });
                    series.push(Series {
                        name: format!("{label}: plain publish"),
                        points: curve(&run["plain_latency_us"]),
                    });
                }
                _ => {}
            }
        }
        series.retain(|s| !s.points.is_empty());
        if !series.is_empty() {
            out.push(Panel {
                title: s.name.clone(),
                series,
            });
        }
    }
    out
}

fn register_font() -> Result<(), String> {
    for path in FONTS {
        if let Ok(bytes) = std::fs::read(path) {
            // plotters keeps registered fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            return plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("{path} is not a usable font"));
        }
    }
    Err(format!(
        "no TrueType font found for the plot's text (looked for {})",
        FONTS.join(", ")
    ))
}

/// Draws every scenario with latencies into `png`.
pub fn latency_percentiles(scenarios: &[Scenario], png: &Path) -> Result<(), String> {
    let panels = panels(scenarios);
    if panels.is_empty() {
        return Err("no latency data to plot".into());
    }
    register_font()?;
    let cols = panels.len().min(2);
    let rows = panels.len().div_ceil(cols);
    let size = (
        560 * u32::try_from(cols).unwrap_or(2),
        380 * u32::try_from(rows).unwrap_or(1),
    );
    let root = BitMapBackend::new(png, size).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("plot {}: {e}", png.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let areas = root.split_evenly((rows, cols));
    for (area, panel) in areas.iter().zip(&panels) {
        let all = panel
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1));
        let (lo, hi) = all.fold((f64::MAX, 0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..MAX_NINES, ((lo * 0.8)..(hi * 1.25)).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_labels(10)
            .x_label_formatter(&|x| {
                // Whole nines only (50 %, 90 %, 99 %, ...): in-between ticks read oddly.
                if (x - x.round()).abs() < 1e-6 {
                    nines_label(*x)
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|y| fmt_us(*y))
            .x_desc("percentile")
            .y_desc("end-to-end latency")
            .draw()
            .map_err(|e| err(&e))?;
        for (i, s) in panel.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| err(&e))?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_map_percentiles() {
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(nines(100.0), MAX_NINES);
        assert_eq!(nines_label(0.0), "0%");
        assert_eq!(nines_label(2.0), "99%");
        assert_eq!(nines_label(3.0), "99.9%");
    }
}
