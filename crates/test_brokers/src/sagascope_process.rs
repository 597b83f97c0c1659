//! The real `sagascope` binary as a child process, for the tests that
//! SIGKILL it (crash recovery, process faults): SAGASCOPE_BIN (scripts/test.sh
//! points it at the release build), else the binary Cargo built for the test.

use std::ffi::OsString;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use std::collections::BTreeMap;

use sagascope_simulator::{ALL_TOPICS, DLT_TOPICS};
use sagascope_store::Store;

use crate::stored_coordinates::{behind, stored_offsets};
use crate::tansu::{free_port, KillOnDrop};

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test_brokers sits two levels below the workspace root")
        .to_path_buf()
}

/// SAGASCOPE_BIN (relative paths from the workspace root, where
/// scripts/test.sh runs), else `built_by_cargo` (a server test's
/// `env!("CARGO_BIN_EXE_sagascope")`).
pub fn sagascope_bin(built_by_cargo: &str) -> PathBuf {
    let bin = match std::env::var_os("SAGASCOPE_BIN") {
        Some(bin) => workspace_root().join(bin),
        None => PathBuf::from(built_by_cargo),
    };
    assert!(bin.is_file(), "no sagascope binary at {}", bin.display());
    bin
}

/// One `sagascope` process, its output in `log`; SIGKILLed when dropped.
pub struct SagascopeProcess {
    process: KillOnDrop,
    /// Its HTTP address (`/readyz` tells its ingest's progress).
    pub listen: SocketAddr,
    log: PathBuf,
}

impl SagascopeProcess {
    /// Runs `bin` with `args` plus `--listen` on a free port.
    pub fn start(bin: &Path, args: &[OsString], log: &Path) -> SagascopeProcess {
        let output = File::create(log).expect("create the sagascope log");
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let child = Command::new(bin)
            .args(args)
            .arg("--listen")
            .arg(listen.to_string())
            .env("RUST_LOG", "info,sqlx=warn,rdkafka=warn")
            .stdin(Stdio::null())
            .stdout(output.try_clone().expect("clone the log file"))
            .stderr(output)
            .spawn()
            .unwrap_or_else(|error| panic!("cannot run {}: {error}", bin.display()));
        SagascopeProcess {
            process: KillOnDrop(child),
            listen,
            log: log.to_path_buf(),
        }
    }

    /// `sagascope serve` ingesting the simulator's topics and dead-letter
    /// topics with the example rules, as consumer group `group`, keeping
    /// everything (nothing removed by age: what is stored is the point),
    /// with `extra` flags after those.
    pub fn serve_simulated(
        bin: &Path,
        bootstrap: &str,
        database_url: &str,
        group: &str,
        log: &Path,
        extra: &[&str],
    ) -> SagascopeProcess {
        let rules = workspace_root().join("rules.example.toml");
        let args: Vec<OsString> = [
            "serve",
            "--brokers",
            bootstrap,
            "--topics",
            &ALL_TOPICS.join(","),
            "--dlq-topics",
            &DLT_TOPICS.join(","),
            "--group-id",
            group,
            "--database-url",
            database_url,
            "--retention-events",
            "off",
            "--rules",
        ]
        .into_iter()
        .map(OsString::from)
        .chain([rules.into_os_string()])
        .chain(extra.iter().map(OsString::from))
        .collect();
        SagascopeProcess::start(bin, &args, log)
    }

    /// `http://{listen}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }

    /// SIGKILL (what `Child::kill` sends on Unix): no shutdown code runs.
    pub fn kill(&mut self) {
        self.process.0.kill().expect("SIGKILL sagascope");
        self.process.0.wait().expect("reap sagascope");
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.process.0.try_wait().expect("poll sagascope")
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "--- the last 40 lines of {} ---\n{tail}",
            self.log.display()
        )
    }

    /// `/readyz`'s body (any status carries it); None while it does not
    /// answer.
    pub async fn readyz(&self) -> Option<serde_json::Value> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(1))
            .build()
            .expect("an HTTP client");
        client
            .get(self.url("/readyz"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()
    }

    /// Batches its ingest stored (`consumer.batches` of `/readyz`): its own
    /// count, not the store's (a commit a killed process had sent can still
    /// land after the kill).
    pub async fn batches(&self) -> Option<u64> {
        self.readyz().await?["consumer"]["batches"].as_u64()
    }

    /// Waits until `ready` holds of `/readyz`'s body; returns how long that
    /// took. Fails when the process exits or `timeout` passes.
    pub async fn wait_for_readyz(
        &mut self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<Duration, String> {
        let started = Instant::now();
        loop {
            if let Some(body) = self.readyz().await {
                if ready(&body) {
                    return Ok(started.elapsed());
                }
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "sagascope exited by itself ({status}) before {what}\n{}",
                    self.log_tail()
                ));
            }
            if started.elapsed() >= timeout {
                return Err(format!(
                    "sagascope did not get to {what} in {} s\n{}",
                    timeout.as_secs(),
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until it has stored its first batch (connect, join the group,
    /// get partitions, read and write a batch).
    pub async fn wait_for_first_batch(&mut self, timeout: Duration) -> Result<Duration, String> {
        self.wait_for_readyz("its first stored batch", timeout, |body| {
            body["consumer"]["batches"].as_u64().unwrap_or(0) > 0
        })
        .await
    }

    /// Waits until it answers HTTP at all.
    pub async fn wait_until_listening(&mut self, timeout: Duration) -> Result<Duration, String> {
        self.wait_for_readyz("listening", timeout, |_| true).await
    }

    /// Waits (at most `timeout`) until the store's offsets of `group` reach
    /// every partition's end (`ends`); this process must stay up meanwhile.
    pub async fn wait_until_consumed(
        &mut self,
        store: &Store,
        group: &str,
        ends: &BTreeMap<(String, i32), i64>,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let behind = behind(&stored_offsets(store, group).await, ends);
            if behind.is_empty() {
                return Ok(());
            }
            if let Some(status) = self.exited() {
                return Err(format!(
                    "sagascope exited by itself ({status}); behind: {}\n{}",
                    behind.join(", "),
                    self.log_tail()
                ));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "after {} s the store has not consumed everything; behind: {}\n{}",
                    timeout.as_secs(),
                    behind.join(", "),
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
