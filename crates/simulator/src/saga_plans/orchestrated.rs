//! Shared by the orchestrated sagas: the orchestrator publishes one saga
//! state event per transition to `saga.state`, keyed by the instance id.

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::{json, Value};

use crate::message::{Body, PlannedMessage};
use crate::topics::SAGA_STATE_TOPIC;

pub struct Orchestrated {
    pub saga_type: &'static str,
    /// Seed 004 shape: `saga_id` names the definition and `correlation_id`
    /// the instance. Without a definition the instance id is `saga_id`.
    pub definition: Option<&'static str>,
    pub instance: String,
    pub context: Value,
    pub clock_ms: u64,
    pub messages: Vec<PlannedMessage>,
}

impl Orchestrated {
    pub fn emit(
        &mut self,
        rng: &mut StdRng,
        status: &str,
        step: Option<&str>,
        error: Option<&str>,
    ) {
        self.clock_ms += rng.random_range(40..400);
        let mut state = json!({
            "saga_type": self.saga_type,
            "status": status,
            "context_data": self.context,
        });
        match self.definition {
            Some(definition) => {
                state["saga_id"] = json!(definition);
                state["correlation_id"] = json!(self.instance);
            }
            None => state["saga_id"] = json!(self.instance),
        }
        if let Some(step) = step {
            state["step"] = json!(step);
        }
        if let Some(error) = error {
            state["error"] = json!(error);
        }
        self.messages.push(PlannedMessage {
            delay_ms: self.clock_ms,
            topic: SAGA_STATE_TOPIC,
            key: self.instance.clone(),
            body: Body::SagaState(state),
        });
    }

    pub fn step_ok(&mut self, rng: &mut StdRng, step: &str) {
        self.emit(rng, "RUNNING", Some(step), None);
        self.emit(rng, "STEP_COMPLETED", Some(step), None);
    }
}
