//! Feature configurations (TOML) and training configurations.
#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = towers::model::FeatureConfig::load(common::file("f.toml", data));
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(c) = toml::from_str::<towers::TrainConfig>(text) {
            let _ = c.validate();
        }
    }
});
