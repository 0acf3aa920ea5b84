//! A tiny synthetic data set made in code (never copied from `../shared/data`): the data the
//! checked-in compat fixtures (`tests/fixtures/`) were trained on.

use std::path::Path;
use towers::data::features::AttributeTable;
use towers::data::{Catalog, Interactions, Row, Sessions};
use towers::model::FeatureConfig;

/// Users, items, their attributes and sessions, with structure a model can learn: each user
/// likes the items of one of five tastes, sessions walk through neighbouring items.
pub struct Synthetic {
    /// 40 users × 8 rated, timestamped interactions.
    pub train: Interactions,
    /// One more interaction per user.
    pub test: Interactions,
    /// 30 items, "Item N" titles.
    pub catalog: Catalog,
    /// `id,age,gender` rows.
    pub users_csv: String,
    /// `id,genres,year` rows.
    pub items_csv: String,
    /// 60 training sessions of 3–8 items.
    pub sessions: Sessions,
    /// 10 test sessions.
    pub test_sessions: Sessions,
}

impl Synthetic {
    /// The user and item attribute tables and the feature configuration of the feature
    /// fixture, written into `dir` (the library reads them from files) and read back.
    pub fn tables(&self, dir: &Path) -> (AttributeTable, AttributeTable, FeatureConfig) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("users.csv"), &self.users_csv).unwrap();
        std::fs::write(dir.join("items.csv"), &self.items_csv).unwrap();
        std::fs::write(dir.join("features.toml"), FEATURES_TOML).unwrap();
        (
            AttributeTable::read(dir.join("users.csv")).unwrap(),
            AttributeTable::read(dir.join("items.csv")).unwrap(),
            FeatureConfig::load(dir.join("features.toml")).unwrap(),
        )
    }
}

/// A small linear congruential generator, so that the data never depends on the library's RNG.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

pub const USERS: u64 = 40;
pub const ITEMS: u64 = 30;

pub fn synthetic() -> Synthetic {
    let mut rng = Lcg(7);
    // (user, item, rating, time) rows of the training and test tables
    type Rows = Vec<(String, String, f32, i64)>;
    let (mut train, mut test): (Rows, Rows) = (vec![], vec![]);
    let item_of = |taste: u64, r: u64| 1 + (taste * 6 + r) % ITEMS;
    for u in 0..USERS {
        let taste = u % 5;
        for j in 0..9 {
            let item = item_of(taste, rng.below(8));
            let rating = 1 + (rng.below(5) + u % 2) % 5;
            let t = 1_000_000 + (u * 10 + j) as i64 * 60;
            let table = if j < 8 { &mut train } else { &mut test };
            table.push((format!("u{u}"), item.to_string(), rating as f32, t));
        }
    }
    let table = |rows: &Rows| {
        let rows = rows.iter().map(|(u, i, r, t)| Row {
            query: u,
            candidate: i,
            rating: Some(*r),
            timestamp: Some(*t),
            weight: None,
        });
        Interactions::from_rows(rows).unwrap()
    };
    let (train, test) = (table(&train), table(&test));
    let catalog = Catalog::from_pairs((1..=ITEMS).map(|i| (i.to_string(), format!("Item {i}"))));
    let mut users_csv = String::from("id,age,gender\n");
    for u in 0..USERS {
        users_csv.push_str(&format!("u{u},{},{}\n", 18 + (u * 7) % 50, if u % 3 == 0 { "F" } else { "M" }));
    }
    let mut items_csv = String::from("id,genres,year\n");
    for i in 1..=ITEMS {
        let g = ["Action", "Comedy", "Drama", "Noir", "Sci-Fi"];
        items_csv.push_str(&format!("{i},{}|{},{}\n", g[(i % 5) as usize], g[((i / 6) % 5) as usize], 1980 + i));
    }
    let session = |rng: &mut Lcg| -> Vec<String> {
        let len = 3 + rng.below(6);
        let mut item = 1 + rng.below(ITEMS);
        (0..len)
            .map(|_| {
                let id = item.to_string();
                item = 1 + (item + rng.below(3)) % ITEMS;
                id
            })
            .collect()
    };
    let sessions = Sessions { items: (0..60).map(|_| session(&mut rng)).collect(), ids: None };
    let test_sessions = Sessions { items: (0..10).map(|_| session(&mut rng)).collect(), ids: None };
    Synthetic { train, test, catalog, users_csv, items_csv, sessions, test_sessions }
}

/// The feature configuration of the feature fixture (tables `users.csv` and `items.csv` beside it).
pub const FEATURES_TOML: &str = "layers = [16, 8]\n[query]\nid_dim = 8\ntable = \"users.csv\"\ntime = { buckets = 10, dim = 4 }\n\
     [[query.features]]\ncolumn = \"age\"\nencoder = \"bucketize\"\nboundaries = [25, 40]\ndim = 4\n\
     [[query.features]]\ncolumn = \"gender\"\nencoder = \"category\"\ndim = 2\n\
     [candidate]\nid_dim = 8\ntable = \"items.csv\"\nid_dropout = 0.1\n\
     [[candidate.features]]\ncolumn = \"genres\"\nencoder = \"multi_hot\"\ndim = 4\n\
     [[candidate.features]]\ncolumn = \"year\"\nencoder = \"bucketize\"\nboundaries = [1990, 2000]\ndim = 2\n";
