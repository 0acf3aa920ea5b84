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

    /// An SVG line plot: training loss, and validation top-100 beside it when present.
    pub fn to_svg(&self) -> String {
        let loss: Vec<f64> = self.epochs.iter().map(|e| e.loss).collect();
        let val: Vec<f64> = self.epochs.iter().filter_map(|e| e.validation.map(|m| m.top_100)).collect();
        let panels: Vec<(&str, &[f64], &str)> = if val.len() == loss.len() && !val.is_empty() {
            vec![("training loss", &loss[..], "#1f77b4"), ("validation top-100 accuracy", &val[..], "#d62728")]
        } else {
            vec![("training loss", &loss[..], "#1f77b4")]
        };
        let (w, ph) = (640.0, 260.0);
        let h = ph * panels.len() as f64;
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>"#
        );
        for (p, (title, ys, color)) in panels.iter().enumerate() {
            let (x0, x1, y0, y1) = (70.0, w - 20.0, p as f64 * ph + 30.0, (p + 1) as f64 * ph - 40.0);
            let (lo, hi) = ys.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| (a.min(y), b.max(y)));
            let span = if hi > lo { hi - lo } else { 1.0 };
            let n = ys.len().max(2) - 1;
            let px = |i: usize| x0 + (x1 - x0) * i as f64 / n as f64;
            let py = |y: f64| y1 - (y1 - y0) * (y - lo) / span;
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="middle" font-size="14">{title}</text>"#,
                (x0 + x1) / 2.0,
                y0 - 10.0
            );
            let _ = write!(
                s,
                r#"<line x1="{x0}" y1="{y1}" x2="{x1}" y2="{y1}" stroke="black"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>"#
            );
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{hi:.4}</text><text x="{}" y="{}" text-anchor="end">{lo:.4}</text>"#,
                x0 - 5.0,
                y0 + 4.0,
                x0 - 5.0,
                y1 + 4.0
            );
            let _ = write!(
                s,
                r#"<text x="{x0}" y="{}">epoch 1</text><text x="{x1}" y="{}" text-anchor="end">epoch {}</text>"#,
                y1 + 16.0,
                y1 + 16.0,
                ys.len()
            );
            let pts: Vec<String> = ys.iter().enumerate().map(|(i, &y)| format!("{:.1},{:.1}", px(i), py(y))).collect();
            let _ =
                write!(s, r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#, pts.join(" "));
            for (i, &y) in ys.iter().enumerate() {
                let _ = write!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#, px(i), py(y));
            }
        }
        s.push_str("</svg>\n");
        s
    }

    /// JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(Error::internal)
    }
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
        assert!(h.to_svg().contains("<polyline") && h.to_svg().ends_with("</svg>\n"));
        let back: History = serde_json::from_str(&h.to_json().unwrap()).unwrap();
        assert_eq!(back, h);
    }
}
