//! Session files of the shared datasets load as documented in their READMEs.

mod common;

use towers::data::Sessions;

#[test]
fn retailrocket_and_diginetica_sessions() {
    let Some(rr) = common::shared_data("retailrocket-cotrec") else { return };
    let train = Sessions::read_lines(rr.join("train_sessions.txt")).unwrap();
    let test = Sessions::read_lines(rr.join("test_sessions.txt")).unwrap();
    assert_eq!((train.len(), test.len()), (126_168, 15_132));
    assert_eq!(train.items.iter().map(Vec::len).sum::<usize>(), 685_984);
    let (prefixes, targets) = test.split_targets().unwrap();
    assert_eq!(targets.len(), 15_132);
    let repeats = prefixes.items.iter().zip(&targets).filter(|(p, t)| p.last() == Some(t)).count();
    assert!((repeats as f64 / 15_132.0 - 0.167).abs() < 0.001, "16.7% of targets repeat the last click");

    let Some(dg) = common::shared_data("diginetica-dynamicrec") else { return };
    assert_eq!(Sessions::read_lines(dg.join("diginetica.csv")).unwrap().len(), 70_756);
}

#[test]
fn movielens_histories_in_time_order() {
    let Some(ml) = common::shared_data("ml-100k") else { return };
    let data = towers::data::movielens::MovieLens::load(&ml).unwrap();
    let h = Sessions::from_interactions(&data.ratings).unwrap();
    assert_eq!(h.len(), 943);
    assert_eq!(h.items.iter().map(Vec::len).sum::<usize>(), 100_000);
}
