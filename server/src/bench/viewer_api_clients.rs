//! The API clients of `bench viewers`: each one, as its own proxy user,
//! requests in turn what the pages call — the overview, the saga list
//! (plain and filtered), a saga's timeline, the dead-letter list — then
//! waits its think time, until told to stop. Latency runs from sending a
//! request to having read its whole body.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The kinds of request, as the report groups them.
pub const KINDS: [&str; 4] = ["overview", "saga list", "saga timeline", "DLQ list"];

/// What the clients measured, by kind (the index in [`KINDS`]).
#[derive(Default)]
pub struct ApiLog {
    pub samples: [Vec<Duration>; KINDS.len()],
    pub errors: [u64; KINDS.len()],
    pub first_error: Option<String>,
}

/// Saga ids a timeline request may pick: those the list answers showed,
/// as a person opens a saga from the list.
pub type KnownSagas = Arc<Mutex<Vec<String>>>;

/// Saga ids kept for the timeline requests (the latest list answers').
const KNOWN_SAGAS: usize = 1_000;

/// Adds the saga ids of a list answer to `sagas`.
fn remember_sagas(body: &[u8], sagas: &KnownSagas) {
    let Ok(page) = serde_json::from_slice::<serde_json::Value>(body) else {
        return;
    };
    let Some(items) = page["items"].as_array() else {
        return;
    };
    let mut known = sagas
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    known.extend(
        items
            .iter()
            .filter_map(|item| item["saga_id"].as_str().map(str::to_string)),
    );
    let excess = known.len().saturating_sub(KNOWN_SAGAS);
    known.drain(..excess);
}

fn path_of(kind: usize, rng: &mut StdRng, sagas: &KnownSagas) -> String {
    match kind {
        0 => format!(
            "/api/v1/metrics/overview?window={}",
            ["15m", "1h"][rng.random_range(0..2)]
        ),
        1 => ["/api/v1/sagas", "/api/v1/sagas?status=failed"][rng.random_range(0..2)].to_string(),
        2 => {
            let known = sagas
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match known.len() {
                0 => "/api/v1/sagas".to_string(),
                n => format!(
                    "/api/v1/sagas/{}",
                    sagascope_model::percent_encode(&known[rng.random_range(0..n)])
                ),
            }
        }
        _ => "/api/v1/dlq".to_string(),
    }
}

/// One client: requests until `stop`, pausing `think` after each answer.
#[allow(clippy::too_many_arguments)]
pub async fn client_loop(
    client: reqwest::Client,
    base: String,
    user: String,
    seed: u64,
    think: Duration,
    sagas: KnownSagas,
    log: Arc<Mutex<ApiLog>>,
    stop: Arc<AtomicBool>,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    // Clients start at different kinds, so every kind is asked all along.
    let mut kind = rng.random_range(0..KINDS.len());
    // Spread the first requests over one think time.
    tokio::time::sleep(think.mul_f64(rng.random::<f64>())).await;
    while !stop.load(Ordering::Relaxed) {
        let path = path_of(kind, &mut rng, &sagas);
        let sent = Instant::now();
        let outcome = match client
            .get(format!("{base}{path}"))
            .header(super::viewers::USER_HEADER, &user)
            .send()
            .await
        {
            Ok(response) => {
                let status = response.status();
                match response.bytes().await {
                    Ok(body) if status.is_success() => Ok(body),
                    Ok(_) => Err(format!("{status} for {path}")),
                    Err(error) => Err(format!("{error} for {path}")),
                }
            }
            Err(error) => Err(format!("{error} for {path}")),
        };
        let took = sent.elapsed();
        if let (1, Ok(body)) = (kind, &outcome) {
            remember_sagas(body, &sagas);
        }
        {
            let mut log = log
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match outcome {
                Ok(_) => log.samples[kind].push(took),
                Err(error) => {
                    log.errors[kind] += 1;
                    log.first_error.get_or_insert(error);
                }
            }
        }
        kind = (kind + 1) % KINDS.len();
        tokio::time::sleep(think).await;
    }
}
