//! The ranking model of TFRS's basic-ranking tutorial: user and item embeddings, concatenated,
//! through an MLP to a predicted rating.

use crate::kernels::dense::{Mlp, MlpCache};
use crate::kernels::table::Table;
use crate::rng::Rng;

/// `rating = MLP([user embedding, item embedding])`.
#[derive(Debug, Clone, PartialEq)]
pub struct RankingModel {
    /// User embeddings (row 0 = OOV).
    pub user: Table,
    /// Item embeddings (row 0 = OOV).
    pub item: Table,
    /// `2·dim → layers… → 1`.
    pub mlp: Mlp,
}

impl RankingModel {
    /// A fresh model; the output bias starts at `mean` (the mean training rating).
    pub fn new(users: usize, items: usize, dim: usize, layers: &[usize], mean: f32, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let user = Table::uniform(users, dim, 0.05, &mut rng);
        let item = Table::uniform(items, dim, 0.05, &mut rng);
        let widths: Vec<usize> = layers.iter().copied().chain([1]).collect();
        let mut mlp = Mlp::new(2 * dim, &widths, &mut rng);
        if let Some(b) = mlp.biases.last_mut() {
            b.data[0] = mean;
        }
        RankingModel { user, item, mlp }
    }

    /// Embedding width of each side.
    pub fn dim(&self) -> usize {
        self.user.dim
    }

    fn inputs(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        let mut x = Vec::with_capacity(pairs.len() * 2 * self.dim());
        for &(u, i) in pairs {
            x.extend_from_slice(self.user.row(u as usize));
            x.extend_from_slice(self.item.row(i as usize));
        }
        x
    }

    /// Predicted ratings of (user row, item row) pairs.
    pub fn predict(&self, pairs: &[(u32, u32)]) -> Vec<f32> {
        self.mlp.forward(&self.inputs(pairs), pairs.len())
    }

    /// Training forward pass.
    pub(crate) fn forward_train(&self, pairs: &[(u32, u32)]) -> (Vec<f32>, MlpCache) {
        self.mlp.forward_train(self.inputs(pairs), pairs.len())
    }
}
