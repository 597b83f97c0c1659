//! The seed of a fault test's random choices (what to produce, when to
//! strike): SAGASCOPE_FAULT_SEED replays a failed run, else a fresh one.

use rand::Rng;

/// The seed for `test`, printed either way so a failure can be replayed.
pub fn fault_seed(test: &str) -> u64 {
    let seed = match std::env::var("SAGASCOPE_FAULT_SEED") {
        Ok(seed) => seed
            .trim()
            .parse()
            .expect("SAGASCOPE_FAULT_SEED is an unsigned integer"),
        Err(_) => rand::rng().random(),
    };
    println!("{test}: seed {seed} (replay with SAGASCOPE_FAULT_SEED={seed})");
    seed
}
