//! The training log: a CSV file of rows, and PNG plots over steps: the train and test figures
//! (bits/dim for the IDF; each family names its own, [`LogColumns`]), and the family's extra
//! columns (a GAN's losses and critic scores, a VAE's ELBO terms) in a second plot.

use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

use super::model::LogColumns;
use super::TrainError;

/// One row of `log.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub step: usize,
    pub epoch: f64,
    pub lr: f64,
    /// Mean training figure (bpd for the IDF) since the previous row.
    pub train_bpd: f64,
    /// Test figure, when measured at this step.
    pub test_bpd: Option<f64>,
    pub images_per_s: f64,
    pub elapsed_s: f64,
    /// The family's extra columns ([`LogColumns::extras`]), means since the previous row.
    pub extras: Vec<f64>,
}

/// The header of `log.csv`: `step,epoch,lr,train_…,test_…,images_per_s,elapsed_s`, then the
/// extras (for the IDF `step,epoch,lr,train_bpd,test_bpd,images_per_s,elapsed_s`).
fn header(columns: &LogColumns) -> String {
    let mut h = format!(
        "step,epoch,lr,train_{},test_{},images_per_s,elapsed_s",
        columns.train, columns.test
    );
    for e in &columns.extras {
        h.push(',');
        h.push_str(e);
    }
    h
}

impl LogRow {
    fn to_csv(&self) -> String {
        let test = self.test_bpd.map(|v| format!("{v:.5}")).unwrap_or_default();
        let mut line = format!(
            "{},{:.4},{:.3e},{:.5},{},{:.1},{:.1}",
            self.step, self.epoch, self.lr, self.train_bpd, test, self.images_per_s, self.elapsed_s
        );
        for e in &self.extras {
            line.push_str(&format!(",{e:.5}"));
        }
        line
    }

    fn parse(line: &str) -> Option<LogRow> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() < 7 {
            return None;
        }
        Some(LogRow {
            step: f[0].parse().ok()?,
            epoch: f[1].parse().ok()?,
            lr: f[2].parse().ok()?,
            train_bpd: f[3].parse().ok()?,
            test_bpd: if f[4].is_empty() {
                None
            } else {
                Some(f[4].parse().ok()?)
            },
            images_per_s: f[5].parse().ok()?,
            elapsed_s: f[6].parse().ok()?,
            extras: f[7..]
                .iter()
                .map(|v| v.parse().ok())
                .collect::<Option<_>>()?,
        })
    }
}

/// Reads `log.csv`, keeping rows up to `max_step` (the rows a resumed run continues from).
pub fn read(path: &Path, max_step: usize) -> Vec<LogRow> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    text.lines()
        .skip(1)
        .filter_map(LogRow::parse)
        .filter(|r| r.step <= max_step)
        .collect()
}

/// Rewrites `log.csv` with `rows`, its columns named by `columns`.
pub fn write(path: &Path, rows: &[LogRow], columns: &LogColumns) -> Result<(), TrainError> {
    let mut f = std::fs::File::create(path).map_err(|e| TrainError::io(path, e))?;
    let mut text = header(columns);
    text.push('\n');
    for r in rows {
        text.push_str(&r.to_csv());
        text.push('\n');
    }
    f.write_all(text.as_bytes())
        .map_err(|e| TrainError::io(path, e))
}

/// Draws the plots of a run into `dir`: train and test figures against steps
/// (`{columns.plot}.png`), and the extra columns, if any (`{columns.plot}-parts.png`).
pub fn plot_run(
    dir: &Path,
    rows: &[LogRow],
    title: &str,
    columns: &LogColumns,
) -> Result<(), TrainError> {
    plot(
        &dir.join(format!("{}.png", columns.plot)),
        rows,
        title,
        &columns.y_label,
    )?;
    if !columns.extras.is_empty() {
        plot_parts(
            &dir.join(format!("{}-parts.png", columns.plot)),
            rows,
            title,
            &columns.extras,
        )?;
    }
    Ok(())
}

/// Draws train and test figures against steps into a PNG.
pub fn plot(path: &Path, rows: &[LogRow], title: &str, y_label: &str) -> Result<(), TrainError> {
    if rows.is_empty() {
        return Ok(());
    }
    crate::plot::register_font();
    let err = |e: String| TrainError::Plot(format!("{}: {e}", path.display()));
    let train: Vec<(f64, f64)> = rows.iter().map(|r| (r.step as f64, r.train_bpd)).collect();
    let test: Vec<(f64, f64)> = rows
        .iter()
        .filter_map(|r| r.test_bpd.map(|t| (r.step as f64, t)))
        .collect();
    let all = train.iter().chain(&test).map(|p| p.1);
    // skip the first rows' very high loss so the interesting range is visible
    let tail: Vec<f64> = rows
        .iter()
        .skip(rows.len() / 10)
        .map(|r| r.train_bpd)
        .chain(test.iter().map(|p| p.1))
        .collect();
    let lo = all.clone().fold(f64::INFINITY, f64::min);
    let hi = tail
        .iter()
        .cloned()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(lo + 0.1);
    let x_max = rows.last().map_or(1.0, |r| r.step as f64).max(1.0);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (crate::plot::FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (lo - 0.05 * (hi - lo))..hi)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("step")
        .y_desc(y_label)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    chart
        .draw_series(LineSeries::new(train, &BLUE))
        .map_err(|e| err(e.to_string()))?
        .label("train (running mean)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    chart
        .draw_series(LineSeries::new(test.clone(), RED.stroke_width(2)))
        .map_err(|e| err(e.to_string()))?
        .label("test")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    chart
        .draw_series(test.iter().map(|p| Circle::new(*p, 3, RED.filled())))
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

/// Draws each extra column (named `names`, one line each, running means) against steps.
pub fn plot_parts(
    path: &Path,
    rows: &[LogRow],
    title: &str,
    names: &[String],
) -> Result<(), TrainError> {
    let rows: Vec<&LogRow> = rows
        .iter()
        .filter(|r| r.extras.len() == names.len())
        .collect();
    let series: Vec<(String, Vec<(f64, f64)>)> = names
        .iter()
        .enumerate()
        .map(|(k, name)| {
            let line = rows.iter().map(|r| (r.step as f64, r.extras[k])).collect();
            (name.clone(), line)
        })
        .collect();
    plot_lines(path, title, "step", None, &series)
}

/// Draws named lines of `(x, y)` points into one PNG (one colour each, with a legend); nothing
/// when every line is empty. Non-finite values are left out of the axis range.
pub fn plot_lines(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: Option<&str>,
    series: &[(String, Vec<(f64, f64)>)],
) -> Result<(), TrainError> {
    if series.iter().all(|(_, line)| line.is_empty()) {
        return Ok(());
    }
    crate::plot::register_font();
    let err = |e: String| TrainError::Plot(format!("{}: {e}", path.display()));
    let values = || series.iter().flat_map(|(_, line)| line.iter().map(|p| p.1));
    let lo = values()
        .filter(|v| v.is_finite())
        .fold(f64::INFINITY, f64::min);
    let hi = values()
        .filter(|v| v.is_finite())
        .fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if lo.is_finite() {
        (lo, hi.max(lo + 1e-3))
    } else {
        (0.0, 1.0)
    };
    let pad = 0.05 * (hi - lo);
    let x_max = series
        .iter()
        .flat_map(|(_, line)| line.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (crate::plot::FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (lo - pad)..(hi + pad))
        .map_err(|e| err(e.to_string()))?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc);
    if let Some(y) = y_desc {
        mesh.y_desc(y);
    }
    mesh.draw().map_err(|e| err(e.to_string()))?;
    for (k, (name, line)) in series.iter().enumerate() {
        let colour = Palette99::pick(k).to_rgba();
        chart
            .draw_series(LineSeries::new(line.iter().copied(), colour))
            .map_err(|e| err(e.to_string()))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(e.to_string()))?;
    root.present().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_round_trip_and_plot() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<LogRow> = (0..20)
            .map(|i| LogRow {
                step: i * 10,
                epoch: i as f64 / 7.0,
                lr: 1e-3,
                train_bpd: 8.0 / (1.0 + i as f64),
                test_bpd: (i % 5 == 0).then_some(7.0 / (1.0 + i as f64)),
                images_per_s: 100.0,
                elapsed_s: i as f64,
                extras: Vec::new(),
            })
            .collect();
        let p = dir.path().join("log.csv");
        write(&p, &rows, &LogColumns::bpd()).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with("step,epoch,lr,train_bpd,test_bpd,images_per_s,elapsed_s\n"));
        let back = read(&p, 95);
        assert_eq!(back.len(), 10);
        assert_eq!(back[5].step, 50);
        assert!((back[5].test_bpd.unwrap() - 7.0 / 6.0).abs() < 1e-5);
        let png = dir.path().join("bpd.png");
        plot(&png, &rows, "test", "bits per dimension").unwrap();
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (900, 560));
    }

    #[test]
    fn extra_columns_round_trip_and_are_plotted() {
        let dir = tempfile::tempdir().unwrap();
        let columns = LogColumns {
            train: "critic_loss".into(),
            test: "critic_loss".into(),
            y_label: "loss".into(),
            plot: "losses".into(),
            extras: vec!["generator_loss".into(), "gradient_penalty".into()],
        };
        let rows: Vec<LogRow> = (0..5)
            .map(|i| LogRow {
                step: i + 1,
                epoch: 0.0,
                lr: 1e-3,
                train_bpd: -(i as f64),
                test_bpd: None,
                images_per_s: 1.0,
                elapsed_s: 0.0,
                extras: vec![i as f64, 0.5],
            })
            .collect();
        let p = dir.path().join("log.csv");
        write(&p, &rows, &columns).unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.starts_with(
            "step,epoch,lr,train_critic_loss,test_critic_loss,images_per_s,elapsed_s,generator_loss,gradient_penalty\n"
        ));
        let back = read(&p, 100);
        assert_eq!(back, rows);
        plot_run(dir.path(), &rows, "t", &columns).unwrap();
        for f in ["losses.png", "losses-parts.png"] {
            let img = image::open(dir.path().join(f)).unwrap();
            assert_eq!((img.width(), img.height()), (900, 560));
        }
    }
}
