//! The training log: a CSV file of rows, and a PNG plot of train/test bpd over steps.

use plotters::prelude::*;
use std::io::Write;
use std::path::Path;

use super::TrainError;

/// One row of `log.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub step: usize,
    pub epoch: f64,
    pub lr: f64,
    /// Mean training bpd since the previous row.
    pub train_bpd: f64,
    /// Test bpd, when measured at this step.
    pub test_bpd: Option<f64>,
    pub images_per_s: f64,
    pub elapsed_s: f64,
}

const HEADER: &str = "step,epoch,lr,train_bpd,test_bpd,images_per_s,elapsed_s";

impl LogRow {
    fn to_csv(&self) -> String {
        let test = self.test_bpd.map(|v| format!("{v:.5}")).unwrap_or_default();
        format!(
            "{},{:.4},{:.3e},{:.5},{},{:.1},{:.1}",
            self.step, self.epoch, self.lr, self.train_bpd, test, self.images_per_s, self.elapsed_s
        )
    }

    fn parse(line: &str) -> Option<LogRow> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 7 {
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

/// Rewrites `log.csv` with `rows`.
pub fn write(path: &Path, rows: &[LogRow]) -> Result<(), TrainError> {
    let mut f = std::fs::File::create(path).map_err(|e| TrainError::io(path, e))?;
    let mut text = String::from(HEADER);
    text.push('\n');
    for r in rows {
        text.push_str(&r.to_csv());
        text.push('\n');
    }
    f.write_all(text.as_bytes())
        .map_err(|e| TrainError::io(path, e))
}

/// Draws train and test bpd against steps into a PNG.
pub fn plot(path: &Path, rows: &[LogRow], title: &str) -> Result<(), TrainError> {
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
        .y_desc("bits per dimension")
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
            })
            .collect();
        let p = dir.path().join("log.csv");
        write(&p, &rows).unwrap();
        let back = read(&p, 95);
        assert_eq!(back.len(), 10);
        assert_eq!(back[5].step, 50);
        assert!((back[5].test_bpd.unwrap() - 7.0 / 6.0).abs() < 1e-5);
        let png = dir.path().join("bpd.png");
        plot(&png, &rows, "test").unwrap();
        let img = image::open(&png).unwrap();
        assert_eq!((img.width(), img.height()), (900, 560));
    }
}
