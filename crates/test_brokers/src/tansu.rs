//! Tansu, a Kafka-protocol broker in one binary, as a child process: `tansu`
//! from TANSU_BIN, else PATH (`scripts/setup.sh --tests` installs 0.6.0).
//! On its memory engine a restart starts empty; on its Postgres engine its
//! log survives a restart (the broker fault tests).

use std::fs::File;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free local port")
        .port()
}

/// A child process that is killed (SIGKILL) when dropped, also when the
/// test panics.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A directory of this test's logs, removed at the end unless `keep` or
/// the test panicked (the logs explain the failure).
pub struct WorkDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl WorkDir {
    /// `NAME-PID-N`: unique per test in a process of many tests.
    pub fn new(name: &str) -> WorkDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&path).expect("create the work directory");
        WorkDir { path, keep: false }
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if !self.keep && !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Where Tansu keeps its log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TansuStorage {
    /// `memory://tansu/`: gone with the process.
    Memory,
    /// `postgres://…`: survives a restart (needs a tansu built with its
    /// `postgres` feature; the 0.6.0 that setup.sh installs lacks it).
    Postgres(String),
    /// Bucket `tansu` of the S3 API at this endpoint (`http://…`, see
    /// [`crate::S3Server`]): survives a restart.
    S3(String),
}

impl TansuStorage {
    fn url(&self) -> &str {
        match self {
            TansuStorage::Memory => "memory://tansu/",
            TansuStorage::Postgres(url) => url,
            TansuStorage::S3(_) => "s3://tansu/",
        }
    }

    /// What Tansu's object store reads from its environment.
    fn env(&self) -> Vec<(&'static str, &str)> {
        match self {
            TansuStorage::S3(endpoint) => vec![
                ("AWS_ENDPOINT", endpoint.as_str()),
                ("AWS_ALLOW_HTTP", "true"),
                ("AWS_ACCESS_KEY_ID", "sagascope-tests"),
                ("AWS_SECRET_ACCESS_KEY", "sagascope-tests"),
                ("AWS_DEFAULT_REGION", "us-east-1"),
            ],
            TansuStorage::Memory | TansuStorage::Postgres(_) => Vec::new(),
        }
    }
}

/// A running Tansu broker on a fixed port; killed when dropped.
pub struct TansuBroker {
    pub bootstrap: String,
    pub port: u16,
    storage: TansuStorage,
    log_dir: PathBuf,
    starts: u32,
    process: Option<KillOnDrop>,
}

impl TansuBroker {
    /// A broker on a free port, logging to `work/tansu.log`.
    pub fn start(work: &Path, storage: TansuStorage) -> anyhow::Result<TansuBroker> {
        let mut broker = TansuBroker {
            bootstrap: String::new(),
            port: free_port(),
            storage,
            log_dir: work.to_path_buf(),
            starts: 0,
            process: None,
        };
        broker.bootstrap = format!("127.0.0.1:{}", broker.port);
        broker.restart()?;
        Ok(broker)
    }

    /// Whether the process is up (it may also have exited by itself).
    pub fn is_running(&mut self) -> bool {
        match &mut self.process {
            Some(process) => matches!(process.0.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// SIGKILL: the broker is gone at once, as in a crash.
    pub fn kill(&mut self) {
        drop(self.process.take());
    }

    /// Starts it again on the same port (after `kill`, or the first time),
    /// and waits until it listens. Each start logs to its own file.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let tansu = std::env::var_os("TANSU_BIN").unwrap_or_else(|| "tansu".into());
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let log_path = self.log_dir.join(format!("tansu-{}.log", self.starts));
        self.starts += 1;
        let log = File::create(&log_path)?;
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", self.storage.url()])
            .envs(self.storage.env())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {} (set TANSU_BIN or run scripts/setup.sh --tests)",
                    tansu.to_string_lossy()
                )
            })?;
        let mut process = KillOnDrop(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = process.0.try_wait()? {
                anyhow::bail!("tansu exited ({status}); see {}", log_path.display());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "tansu does not listen on {} after 20 s; see {}",
                self.port,
                log_path.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.process = Some(process);
        Ok(())
    }
}
