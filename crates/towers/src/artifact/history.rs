//! Per-epoch training history, written as JSON, CSV and an SVG plot.

use crate::metrics::TopKMetrics;
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// One epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean batch loss, weighted by batch size (as Keras reports it).
    pub loss: f64,
    /// Wall seconds of the epoch's training (validation excluded).
    pub seconds: f64,
    /// Validation metrics after the epoch, when a validation set was given.
    pub validation: Option<TopKMetrics>,
}

/// The epochs of a training run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// One record per epoch.
    pub epochs: Vec<EpochRecord>,
}

impl History {
    /// CSV with a header: `epoch,loss,seconds` and validation `top_10,top_100,mrr` when present.
    pub fn to_csv(&self) -> String {
        let mut s = String::from("epoch,loss,seconds,val_top_10,val_top_100,val_mrr\n");
        for e in &self.epochs {
            let v = e
                .validation
                .map(|m| format!("{:.6},{:.6},{:.6}", m.top_10, m.top_100, m.mrr))
                .unwrap_or_else(|| ",,".into());
            let _ = writeln!(s, "{},{:.6},{:.4},{v}", e.epoch, e.loss, e.seconds);
        }
        s
    }

    /// An SVG plot (drawn with `plotters`): the training loss per epoch, and with validation
    /// data every metric per epoch: top-k accuracy (k = 1 … 100) in one panel, MRR@k and
    /// NDCG@10 in another.
    pub fn to_svg(&self) -> Result<String> {
        type Series = (&'static str, fn(&TopKMetrics) -> f64);
        const TOP: [Series; 6] = [
            ("top-1", |m| m.top_1),
            ("top-5", |m| m.top_5),
            ("top-10", |m| m.top_10),
            ("top-20", |m| m.top_20),
            ("top-50", |m| m.top_50),
            ("top-100", |m| m.top_100),
        ];
        const RANK: [Series; 5] = [
            ("MRR", |m| m.mrr),
            ("MRR@10", |m| m.mrr_10),
            ("MRR@20", |m| m.mrr_20),
            ("MRR@100", |m| m.mrr_100),
            ("NDCG@10", |m| m.ndcg_10),
        ];
        let epoch = |e: &EpochRecord| e.epoch as f64;
        let mut panels: Vec<Panel> =
            vec![("training loss", vec![("loss", self.epochs.iter().map(|e| (epoch(e), e.loss)).collect())])];
        let validated: Vec<(f64, TopKMetrics)> =
            self.epochs.iter().filter_map(|e| Some((epoch(e), e.validation?))).collect();
        if !validated.is_empty() {
            for (title, series) in [("validation: top-k accuracy", &TOP[..]), ("validation: MRR and NDCG", &RANK[..])] {
                let lines = series.iter().map(|(name, f)| (*name, validated.iter().map(|(x, m)| (*x, f(m))).collect()));
                panels.push((title, lines.collect()));
            }
        }
        let mut svg = String::new();
        draw(&mut svg, &panels, self.epochs.len()).map_err(|e| Error::Internal(format!("history.svg: {e}")))?;
        Ok(svg)
    }

    /// JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(Error::internal)
    }
}

/// A panel of the plot: its title and its named lines of (epoch, value) points.
type Panel<'a> = (&'a str, Vec<(&'a str, Vec<(f64, f64)>)>);

/// Draws `panels` one above the other.
fn draw(svg: &mut String, panels: &[Panel], epochs: usize) -> std::result::Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    const PANEL: u32 = 280;
    let root = SVGBackend::with_string(svg, (720, PANEL * panels.len() as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    for (area, (title, lines)) in root.split_evenly((panels.len(), 1)).iter().zip(panels) {
        let values = lines.iter().flat_map(|(_, l)| l.iter().map(|p| p.1));
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        let (lo, hi) = if lo.is_finite() && hi > lo { (lo, hi) } else { (lo.min(0.0), lo.max(0.0) + 1.0) };
        let pad = (hi - lo) * 0.05;
        let mut chart = ChartBuilder::on(area)
            .caption(*title, ("sans-serif", 16))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.5..epochs.max(1) as f64 + 0.5, lo - pad..hi + pad)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(epochs.clamp(2, 12))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()?;
        for (i, (name, points)) in lines.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(points.iter().copied(), color.stroke_width(2)).point_size(3))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2)));
        }
        if lines.len() > 1 {
            chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
        }
    }
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_json_svg() {
        let h = History {
            epochs: vec![
                EpochRecord { epoch: 1, loss: 2.0, seconds: 0.5, validation: None },
                EpochRecord { epoch: 2, loss: 1.0, seconds: 0.4, validation: None },
            ],
        };
        assert!(h.to_csv().starts_with("epoch,loss") && h.to_csv().contains("2,1.000000,0.4000,,,"));
        let svg = h.to_svg().unwrap();
        assert!(svg.contains("<polyline") && svg.contains("training loss") && svg.trim_end().ends_with("</svg>"));
        assert!(!svg.contains("validation"), "no validation data, no validation panel");
        let m = TopKMetrics { top_10: 0.1, top_100: 0.5, mrr: 0.05, ndcg_10: 0.07, ..Default::default() };
        let mut v = h.clone();
        v.epochs.iter_mut().for_each(|e| e.validation = Some(m));
        let svg = v.to_svg().unwrap();
        for label in ["training loss", "top-k accuracy", "top-100", "MRR@20", "NDCG@10"] {
            assert!(svg.contains(label), "{label} is not drawn");
        }
        let back: History = serde_json::from_str(&h.to_json().unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
