//! A Tansu broker as a child process, for the tests that need a real
//! broker (crash_recovery.rs, recreated_topic.rs): `tansu` from TANSU_BIN,
//! else PATH (`scripts/setup.sh --tests` installs it).

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

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

/// A directory of this test's logs, removed at the end unless `keep`.
pub struct WorkDir {
    pub path: PathBuf,
    /// Set when the test fails: the logs explain the failure.
    pub keep: bool,
}

impl WorkDir {
    pub fn new(name: &str) -> WorkDir {
        let path = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
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

/// The Tansu broker, in memory, on a free port.
pub struct Broker {
    pub bootstrap: String,
    pub port: u16,
    _process: KillOnDrop,
}

impl Broker {
    pub fn start(work: &Path) -> anyhow::Result<Broker> {
        Broker::start_on(work, free_port(), "tansu.log")
    }

    /// A broker on a given port (a fresh one, with an empty store, where
    /// an earlier one ran), logging to `work/log_name`.
    pub fn start_on(work: &Path, port: u16, log_name: &str) -> anyhow::Result<Broker> {
        let tansu = std::env::var_os("TANSU_BIN").unwrap_or_else(|| "tansu".into());
        let url = format!("tcp://127.0.0.1:{port}");
        let log = File::create(work.join(log_name))?;
        let child = Command::new(&tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
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
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = process.0.try_wait()? {
                anyhow::bail!(
                    "tansu exited ({status}); see {}",
                    work.join(log_name).display()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "tansu does not listen on {port} after 20 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(Broker {
            bootstrap: format!("127.0.0.1:{port}"),
            port,
            _process: process,
        })
    }
}
