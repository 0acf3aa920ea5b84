//! Which input features a DCN crosses: the norms of its first cross matrix's blocks, as JSON and
//! as an SVG heat map like the TFRS DCN tutorial's.

use serde::{Deserialize, Serialize};

/// How strongly each pair of input features crosses in a DCN: the Frobenius norm of each block
/// of the first cross layer's matrix (rows: input feature, columns: output feature), as in the
/// TFRS DCN tutorial. Written as `feature_crossing.json` and `.svg` in the model directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureCrossing {
    /// The input features, in input order.
    pub features: Vec<String>,
    /// `norms[a][b]`: the block of feature `a`'s rows and feature `b`'s columns.
    pub norms: Vec<Vec<f32>>,
}

impl FeatureCrossing {
    /// A heat map: one cell per (input feature, output feature) block, darker for larger norms,
    /// each cell labelled with its norm.
    pub fn to_svg(&self) -> String {
        let n = self.features.len();
        let (cell, left, top) = (48usize, 150usize, 150usize);
        let (w, h) = (left + n * cell + 20, top + n * cell + 20);
        let max = self.norms.iter().flatten().copied().fold(0f32, f32::max).max(f32::MIN_POSITIVE);
        let mut s = format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11"><rect width="100%" height="100%" fill="white"/>"#
        );
        for (i, name) in self.features.iter().enumerate() {
            let name = escape(name);
            let y = top + i * cell + cell / 2 + 4;
            s.push_str(&format!(r#"<text x="{}" y="{y}" text-anchor="end">{name}</text>"#, left - 6));
            let x = left + i * cell + cell / 2;
            s.push_str(&format!(
                r#"<text x="{x}" y="{}" text-anchor="start" transform="rotate(-60 {x} {})">{name}</text>"#,
                top - 6,
                top - 6
            ));
        }
        for (i, row) in self.norms.iter().enumerate() {
            for (j, &v) in row.iter().enumerate() {
                let t = (v / max).clamp(0.0, 1.0);
                let shade = (255.0 * (1.0 - t)) as u8;
                let (x, y) = (left + j * cell, top + i * cell);
                s.push_str(&format!(
                    r#"<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({shade},{shade},255)" stroke="white"/>"#
                ));
                let ink = if t > 0.5 { "white" } else { "black" };
                s.push_str(&format!(
                    r#"<text x="{}" y="{}" text-anchor="middle" fill="{ink}">{v:.2}</text>"#,
                    x + cell / 2,
                    y + cell / 2 + 4
                ));
            }
        }
        s.push_str("</svg>\n");
        s
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heat_map_has_a_cell_per_block() {
        let c =
            FeatureCrossing { features: vec!["a".into(), "b<".into()], norms: vec![vec![1.0, 0.5], vec![0.0, 2.0]] };
        let svg = c.to_svg();
        assert_eq!(svg.matches("<rect x=").count(), 4);
        assert!(svg.contains("b&lt;") && svg.ends_with("</svg>\n"));
    }
}
