//! The brokers the Kafka integration suites run on, behind one handle:
//! librdkafka's mock cluster (in-process, the same library as our client)
//! and Tansu (an independent Kafka-protocol broker, a child process), so
//! one test body proves the behaviour on both — as the store suites do for
//! Postgres and SQLite.
//!
//! ```ignore
//! async fn ingests_every_event(broker: BrokerKind) {
//!     let kafka = TestBroker::start(broker, &["saga.state"], 3).unwrap();
//!     // … kafka.bootstrap_servers() …
//! }
//! sagascope_test_brokers::on_both_brokers!(ingests_every_event);
//! ```

mod fault_seed;
mod raw_produce;
mod s3_server;
mod sagascope_process;
mod simulated_traffic;
mod stored_coordinates;
mod tansu;
mod test_broker;

pub use fault_seed::fault_seed;
pub use raw_produce::{produce_raw_records, RawRecord};
pub use s3_server::S3Server;
pub use sagascope_process::{sagascope_bin, workspace_root, SagascopeProcess};
pub use simulated_traffic::{produce_traffic, Coord, Produced, TrafficPlan};
pub use stored_coordinates::{
    admin_postgres_url, behind, consumed, drop_postgres_database, exactly_once, stored_coordinates,
    stored_offsets, StoredCoordinates,
};
pub use tansu::{free_port, KillOnDrop, TansuBroker, TansuStorage, WorkDir};
pub use test_broker::{create_topics, wait_for_topics, BrokerKind, TestBroker};

/// Runs each named `async fn(BrokerKind)` as two tests, `mock_cluster::NAME`
/// and `tansu::NAME` (a multi-threaded runtime with two workers each, or
/// as many as `worker_threads = N;` before the names asks for).
#[macro_export]
macro_rules! on_both_brokers {
    (worker_threads = $workers:tt; $($test:ident),+ $(,)?) => {
        mod mock_cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
                async fn $test() {
                    super::$test($crate::BrokerKind::MockCluster).await
                }
            )+
        }
        mod tansu {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = $workers)]
                async fn $test() {
                    super::$test($crate::BrokerKind::Tansu).await
                }
            )+
        }
    };
    ($($test:ident),+ $(,)?) => {
        $crate::on_both_brokers!(worker_threads = 2; $($test),+);
    };
}
