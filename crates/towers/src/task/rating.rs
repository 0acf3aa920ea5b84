//! The rating task: a model's score predicts a rating (mean squared error).

use serde::{Deserialize, Serialize};

/// The range and mean of the training ratings. Explicit-feedback retrieval learns ratings
/// scaled to `[0, 1]` (`(r − min)/(max − min)`); errors are reported on the original scale.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RatingScale {
    /// Lowest training rating.
    pub min: f32,
    /// Highest training rating.
    pub max: f32,
    /// Mean training rating: the prediction for an unknown user or item.
    pub mean: f32,
}

impl RatingScale {
    /// The scale of some ratings (`None` when there are none or they are all equal).
    pub fn of(ratings: &[f32]) -> Option<Self> {
        let min = ratings.iter().copied().fold(f32::INFINITY, f32::min);
        let max = ratings.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mean = (ratings.iter().map(|&r| r as f64).sum::<f64>() / ratings.len().max(1) as f64) as f32;
        (max > min).then_some(RatingScale { min, max, mean })
    }

    /// A rating scaled to `[0, 1]`.
    pub fn scale(&self, r: f32) -> f32 {
        (r - self.min) / (self.max - self.min)
    }

    /// A `[0, 1]` score back on the rating scale, clamped to the range.
    pub fn unscale(&self, s: f32) -> f32 {
        self.min + (self.max - self.min) * s.clamp(0.0, 1.0)
    }
}

/// Mean squared error of `predictions` against `targets` and its gradient
/// `∂L/∂prediction = 2·(p − t)/n`, written into `grads`.
pub fn mse(predictions: &[f32], targets: &[f32], grads: &mut [f32]) -> f64 {
    let n = predictions.len().max(1) as f32;
    let mut loss = 0f64;
    for ((g, &p), &t) in grads.iter_mut().zip(predictions).zip(targets) {
        let e = p - t;
        loss += (e * e) as f64;
        *g = 2.0 * e / n;
    }
    loss / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_round_trip_and_clamp() {
        let s = RatingScale::of(&[1.0, 5.0, 3.0]).unwrap();
        assert_eq!((s.min, s.max, s.mean), (1.0, 5.0, 3.0));
        assert_eq!(s.scale(4.0), 0.75);
        assert_eq!(s.unscale(0.75), 4.0);
        assert_eq!(s.unscale(1.7), 5.0);
        assert!(RatingScale::of(&[2.0, 2.0]).is_none());
    }

    #[test]
    fn mse_and_gradient() {
        let mut g = [0.0; 2];
        let l = mse(&[1.0, 3.0], &[0.0, 1.0], &mut g);
        assert_eq!(l, 2.5);
        assert_eq!(g, [1.0, 2.0]);
    }
}
