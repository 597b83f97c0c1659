//! `--otlp-listen`: the OTLP receiver alone on a second address, usually
//! 0.0.0.0:4318 (the standard OTLP/HTTP port), so exporters and collectors
//! reach it with their default endpoint while the UI stays elsewhere.
//! The handler checks the token itself; no session, CSRF or page here.

use std::net::SocketAddr;

use anyhow::Context;

use crate::run::Running;

impl Running {
    /// Binds `listen` and serves `POST /v1/traces` there until shutdown;
    /// returns the bound address (port 0 picks a free one).
    pub async fn serve_otlp(&self, listen: SocketAddr) -> anyhow::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen for OTLP on {listen}"))?;
        let addr = listener.local_addr()?;
        let router = crate::http::otlp_router(self.state.clone());
        let mut stop = self.state.shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stopping| *stopping).await;
                })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the OTLP listener stopped");
            }
        });
        Ok(addr)
    }
}
