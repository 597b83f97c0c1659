//! A local S3 API for Tansu's object-store engine (`TansuStorage::S3`), whose
//! log, unlike its memory engine's, survives a broker restart: moto's server
//! (`python3 -m moto.server`, MOTO_PYTHON overrides the interpreter) as a
//! child process, with the bucket `tansu` created. Its objects live in its
//! memory, so they outlive the broker, not this process.

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::tansu::{free_port, KillOnDrop};

/// Killed when dropped.
pub struct S3Server {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    _process: KillOnDrop,
}

impl S3Server {
    /// Starts it on a free port, logging to `work/s3.log`, and creates the
    /// bucket `tansu`.
    pub async fn start(work: &Path) -> anyhow::Result<S3Server> {
        let python = std::env::var_os("MOTO_PYTHON").unwrap_or_else(|| "python3".into());
        let port = free_port();
        let log_path = work.join("s3.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot run {} -m moto.server (pip install 'moto[server]', or set MOTO_PYTHON)",
                    python.to_string_lossy()
                )
            })?;
        let mut process = KillOnDrop(child);
        let address = SocketAddr::from(([127, 0, 0, 1], port));
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = process.0.try_wait()? {
                anyhow::bail!("moto exited ({status}); see {}", log_path.display());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "moto does not listen after 30 s; see {}",
                log_path.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let endpoint = format!("http://127.0.0.1:{port}");
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/tansu"))
            .send()
            .await
            .context("create the bucket")?;
        anyhow::ensure!(
            created.status().is_success(),
            "creating the bucket answered {}",
            created.status()
        );
        Ok(S3Server {
            endpoint,
            _process: process,
        })
    }
}
