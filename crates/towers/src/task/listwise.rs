//! The losses of ranking models over one list of scored items (TF-Ranking's, as the TFRS
//! listwise tutorial uses them): pointwise squared error, pairwise hinge and logistic,
//! ListMLE, ApproxNDCG, and the softmax cross-entropy of implicit feedback; each with its
//! gradient.

use serde::{Deserialize, Serialize};

/// The training loss of a ranking model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "snake_case")]
pub enum RankingLoss {
    /// Squared error of the predicted rating (pointwise; the score is a rating).
    #[default]
    Mse,
    /// `max(0, 1 − (s_i − s_j))` over the pairs of a list whose labels differ (TF-Ranking
    /// `PairwiseHingeLoss`).
    Hinge,
    /// `log(1 + exp(−(s_i − s_j)))` over the same pairs (`PairwiseLogisticLoss`).
    Logistic,
    /// The likelihood of the list's order by label under the Plackett-Luce model (`ListMLELoss`);
    /// ties keep the list's (shuffled) order.
    #[serde(rename = "listmle")]
    #[cfg_attr(feature = "clap", value(name = "listmle"))]
    ListMle,
    /// Minus NDCG with smooth ranks `1 + Σ_j σ((s_j − s_i)/T)` (`ApproxNDCGLoss`, T = 0.1).
    // read as `approx_ndcg` or, as the CLI spells it, `approx-ndcg`
    #[serde(alias = "approx-ndcg")]
    ApproxNdcg,
    /// Implicit feedback (a pipeline's ranker): each positive (label > 0, weighted by its
    /// label) against the list's negatives (labels ≤ 0, the retriever's other candidates),
    /// `−log(e^{s_p} / (e^{s_p} + Σ_n e^{s_n}))`, summed over the positives: every positive is
    /// one example, as in the retriever's softmax and the per-pair top-k metrics.
    Softmax,
}

/// The temperature of [`RankingLoss::ApproxNdcg`]'s smooth ranks (TF-Ranking's default).
pub const APPROX_NDCG_TEMPERATURE: f32 = 0.1;

impl RankingLoss {
    /// Whether the model's score is a predicted rating (pointwise squared error).
    pub fn predicts_ratings(self) -> bool {
        self == RankingLoss::Mse
    }

    /// Items per training list of ratings, by default (chosen on a validation split of
    /// MovieLens, the book's ranking experiments): pairwise 10, ListMLE 5 (TFRS's listwise tutorial), ApproxNDCG 50.
    /// (The squared error reads one rating at a time, the softmax a pipeline's candidate lists.)
    pub fn default_list_size(self) -> usize {
        match self {
            RankingLoss::ListMle => 5,
            RankingLoss::ApproxNdcg => 50,
            _ => 10,
        }
    }

    /// Training epochs of a ranking model with this loss, by default (chosen on the validation
    /// splits of MovieLens, the book's ranking experiments): ListMLE 7 (it overfits sooner: 0.837 at 7 epochs, 0.836 at
    /// 8, 0.822 at 12), the others 8.
    pub fn default_epochs(self) -> usize {
        match self {
            RankingLoss::ListMle => 7,
            _ => 8,
        }
    }

    /// The loss of one list (`scores` and `labels` aligned) and its gradient written into
    /// `grads` (same length). A list without information (no differing labels, no positive)
    /// has loss 0 and zero gradients.
    pub fn list(self, scores: &[f32], labels: &[f32], grads: &mut [f32]) -> f64 {
        grads.iter_mut().for_each(|g| *g = 0.0);
        let n = scores.len();
        if n == 0 {
            return 0.0;
        }
        match self {
            RankingLoss::Mse => {
                let mut loss = 0f64;
                for i in 0..n {
                    let e = scores[i] - labels[i];
                    loss += (e * e) as f64;
                    grads[i] = 2.0 * e / n as f32;
                }
                loss / n as f64
            }
            RankingLoss::Hinge | RankingLoss::Logistic => pairwise(self == RankingLoss::Hinge, scores, labels, grads),
            RankingLoss::ListMle => list_mle(scores, labels, grads),
            RankingLoss::ApproxNdcg => approx_ndcg(scores, labels, grads, APPROX_NDCG_TEMPERATURE),
            RankingLoss::Softmax => softmax(scores, labels, grads),
        }
    }
}

fn pairwise(hinge: bool, s: &[f32], y: &[f32], g: &mut [f32]) -> f64 {
    let (mut loss, mut pairs) = (0f64, 0usize);
    for i in 0..s.len() {
        for j in 0..s.len() {
            if y[i] <= y[j] {
                continue;
            }
            pairs += 1;
            let m = (s[i] - s[j]) as f64;
            // ∂loss/∂m
            let d = if hinge {
                loss += (1.0 - m).max(0.0);
                if m < 1.0 { -1.0 } else { 0.0 }
            } else {
                // log(1 + e^(−m)), stable
                loss += if m > 0.0 { (-m).exp().ln_1p() } else { -m + m.exp().ln_1p() };
                -1.0 / (1.0 + m.exp())
            };
            g[i] += d as f32;
            g[j] -= d as f32;
        }
    }
    if pairs == 0 {
        return 0.0;
    }
    g.iter_mut().for_each(|v| *v /= pairs as f32);
    loss / pairs as f64
}

fn list_mle(s: &[f32], y: &[f32], g: &mut [f32]) -> f64 {
    let n = s.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| y[b].total_cmp(&y[a])); // stable: ties keep the list's order
    let max = s.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let e: Vec<f64> = order.iter().map(|&i| (s[i] as f64 - max).exp()).collect();
    // suffix sums S_k = Σ_{m ≥ k} e_m
    let mut suffix = vec![0f64; n + 1];
    for k in (0..n).rev() {
        suffix[k] = suffix[k + 1] + e[k];
    }
    let mut loss = 0f64;
    let mut inv = 0f64; // Σ_{k ≤ j} 1/S_k
    for (k, &i) in order.iter().enumerate() {
        loss += suffix[k].ln() + max - s[i] as f64;
        inv += 1.0 / suffix[k];
        g[i] = (e[k] * inv - 1.0) as f32;
    }
    loss
}

fn gain(y: f32) -> f64 {
    2f64.powf(y as f64) - 1.0
}

fn approx_ndcg(s: &[f32], y: &[f32], g: &mut [f32], t: f32) -> f64 {
    let n = s.len();
    let mut ideal: Vec<f64> = y.iter().map(|&v| gain(v)).collect();
    ideal.sort_by(|a, b| b.total_cmp(a));
    let idcg: f64 = ideal.iter().enumerate().map(|(i, g)| g / (i as f64 + 2.0).log2()).sum();
    if idcg <= 0.0 {
        return 0.0;
    }
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let t = t as f64;
    let mut rank = vec![1f64; n];
    for i in 0..n {
        for j in 0..n {
            if i != j {
                rank[i] += sig((s[j] - s[i]) as f64 / t);
            }
        }
    }
    let ln2 = std::f64::consts::LN_2;
    let mut dcg = 0f64;
    // a_i = ∂loss/∂rank_i
    let mut a = vec![0f64; n];
    for i in 0..n {
        let l = (1.0 + rank[i]).log2();
        dcg += gain(y[i]) / l;
        a[i] = gain(y[i]) / (idcg * (1.0 + rank[i]) * ln2 * l * l);
    }
    for i in 0..n {
        for j in 0..n {
            if i == j {
                continue;
            }
            let x = sig((s[j] - s[i]) as f64 / t);
            let d = x * (1.0 - x) / t; // ∂rank_i/∂s_j; ∂rank_i/∂s_i gets −d
            g[j] += (a[i] * d) as f32;
            g[i] -= (a[i] * d) as f32;
        }
    }
    -dcg / idcg
}

fn softmax(s: &[f32], y: &[f32], g: &mut [f32]) -> f64 {
    let negatives = || (0..s.len()).filter(|&i| y[i] <= 0.0);
    let Some(max) = negatives().map(|i| s[i] as f64).reduce(f64::max) else { return 0.0 };
    // ln Σ_n e^{s_n}
    let ln_neg = max + negatives().map(|i| (s[i] as f64 - max).exp()).sum::<f64>().ln();
    let (mut loss, mut to_negatives) = (0f64, 0f64);
    for p in (0..s.len()).filter(|&i| y[i] > 0.0) {
        let (w, sp) = (y[p] as f64, s[p] as f64);
        // ln(e^{s_p} + Σ_n e^{s_n}), stable
        let lse = sp.max(ln_neg) + (-(sp - ln_neg).abs()).exp().ln_1p();
        loss += w * (lse - sp);
        g[p] = (-w * (1.0 - (sp - lse).exp())) as f32;
        // each negative's gradient is e^{s_n} Σ_p w_p / e^{lse_p}
        to_negatives += w * (max - lse).exp();
    }
    for n in negatives() {
        g[n] = ((s[n] as f64 - max).exp() * to_negatives) as f32;
    }
    loss
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [RankingLoss; 6] = [
        RankingLoss::Mse,
        RankingLoss::Hinge,
        RankingLoss::Logistic,
        RankingLoss::ListMle,
        RankingLoss::ApproxNdcg,
        RankingLoss::Softmax,
    ];

    #[test]
    fn gradients_match_finite_differences() {
        let s = [0.3f32, -0.2, 0.05, 0.4, -0.65]; // no pair exactly at the hinge's kink (margin 1)
        let y = [4.0f32, 1.0, 3.0, 3.0, 0.0];
        for loss in ALL {
            let mut g = [0f32; 5];
            loss.list(&s, &y, &mut g);
            for i in 0..5 {
                let h = 1e-3;
                let (mut p, mut m) = (s, s);
                p[i] += h;
                m[i] -= h;
                let mut scratch = [0f32; 5];
                let fd = (loss.list(&p, &y, &mut scratch) - loss.list(&m, &y, &mut scratch)) / (2.0 * h as f64);
                assert!((fd - g[i] as f64).abs() < 2e-3 * fd.abs().max(1.0), "{loss:?} s[{i}]: fd {fd} vs {}", g[i]);
            }
        }
    }

    #[test]
    fn losses_by_hand() {
        let mut g = [0f32; 2];
        // one pair (label 2 > 1), margin 0.5
        assert!((RankingLoss::Hinge.list(&[1.0, 0.5], &[2.0, 1.0], &mut g) - 0.5).abs() < 1e-9);
        assert!(
            (RankingLoss::Logistic.list(&[1.0, 0.5], &[2.0, 1.0], &mut g) - (1.0 + (-0.5f64).exp()).ln()).abs() < 1e-6
        );
        // ListMLE of two items in label order: −log p(first) − log p(second | rest)
        let want = -(1f64.exp() / (1f64.exp() + 0.5f64.exp())).ln();
        assert!((RankingLoss::ListMle.list(&[1.0, 0.5], &[2.0, 1.0], &mut g) - want).abs() < 1e-6);
        // softmax with one positive of two
        let want = -(1f64.exp() / (1f64.exp() + 0.5f64.exp())).ln();
        assert!((RankingLoss::Softmax.list(&[1.0, 0.5], &[1.0, 0.0], &mut g) - want).abs() < 1e-6);
        // two positives: each against the negative alone, not against the other positive
        let mut g = [0f32; 3];
        let want = -(1f64.exp() / (1f64.exp() + 0.5f64.exp())).ln() - (2f64.exp() / (2f64.exp() + 0.5f64.exp())).ln();
        assert!((RankingLoss::Softmax.list(&[1.0, 2.0, 0.5], &[1.0, 1.0, 0.0], &mut g) - want).abs() < 1e-6);
        // far apart scores stay finite; positives alone carry no information
        let l = RankingLoss::Softmax.list(&[-1000.0, 1000.0, 0.0], &[1.0, 1.0, 0.0], &mut g);
        assert!((l - 1000.0).abs() < 1e-6 && g.iter().all(|v| v.is_finite()), "{l} {g:?}");
        assert_eq!(RankingLoss::Softmax.list(&[1.0, 2.0, 0.5], &[1.0, 2.0, 3.0], &mut g), 0.0);
        let mut g = [0f32; 2];
        // ApproxNDCG of a well-separated list in the right order: about −1
        let l = RankingLoss::ApproxNdcg.list(&[10.0, 0.0], &[3.0, 1.0], &mut g);
        assert!((l + 1.0).abs() < 1e-6, "{l}");
        // no information: zero loss and gradients
        for loss in [RankingLoss::Hinge, RankingLoss::Softmax, RankingLoss::ApproxNdcg] {
            assert_eq!(loss.list(&[1.0, 2.0], &[0.0, 0.0], &mut g), 0.0);
            assert_eq!(g, [0.0, 0.0]);
        }
    }

    #[test]
    fn names() {
        assert_eq!(serde_json::to_string(&RankingLoss::ListMle).unwrap(), "\"listmle\"");
        assert_eq!(serde_json::to_string(&RankingLoss::ApproxNdcg).unwrap(), "\"approx_ndcg\"");
    }
}
