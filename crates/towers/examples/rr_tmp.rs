// temporary RetailRocket tuning harness (not committed)
use towers::data::*;
use towers::train::*;
use towers::TrainConfig;
fn main() -> towers::Result<()> {
    let dir = "../shared/data/retailrocket-cotrec";
    let train = Sessions::read_lines(format!("{dir}/train_sessions.txt"))?;
    let test = Sessions::read_lines(format!("{dir}/test_sessions.txt"))?;
    let vocab = Vocabulary::from_keys(train.items.iter().flatten());
    for arg in std::env::args().skip(1) {
        let (cfg_s, share) = arg.split_once('|').unwrap();
        let cfg: TrainConfig = serde_json::from_str(cfg_s).unwrap();
        let seq = SequenceConfig { share_embeddings: share == "share", ..Default::default() };
        let tr = SequenceExamples::build(&train, &vocab, seq.steps, Positions::All);
        let te = SequenceExamples::build(&test, &vocab, seq.steps, Positions::Last);
        let (m, h) = fit_sequential(&cfg, &seq, vocab.rows(), &tr, Some(&te), false)?;
        for e in &h.epochs { let v = e.validation.unwrap(); println!("ep {} r20 {:.4} mrr20 {:.4} r10 {:.4} {:.1}s", e.epoch, v.top_20, v.mrr_20, v.top_10, e.seconds); }
        let _ = m;
        println!("== {arg}");
    }
    Ok(())
}
