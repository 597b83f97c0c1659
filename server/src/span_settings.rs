//! The span flags (`SpanArgs`) made into what the server runs with: the
//! span source of the waterfall and the OTLP receiver's access rule.

use std::time::Duration;

use anyhow::bail;
use sagascope_spans::{SpanConfig, SpanSourceConfig};

use crate::auth::Secret;
use crate::cli::{SpanArgs, SpanSourceKind};

/// Largest OTLP request body, compressed or not (413 above it).
pub const MAX_OTLP_BODY_BYTES: usize = 16 << 20;

/// Who may send spans to `POST /v1/traces`.
#[derive(Debug, Clone)]
pub struct OtlpReceiverConfig {
    /// The bearer token exporters must send.
    pub token: Option<Secret>,
    /// Accept exports without a token.
    pub allow_anonymous: bool,
    pub max_body_bytes: usize,
}

impl Default for OtlpReceiverConfig {
    /// Off: no token and no anonymous access.
    fn default() -> OtlpReceiverConfig {
        OtlpReceiverConfig {
            token: None,
            allow_anonymous: false,
            max_body_bytes: MAX_OTLP_BODY_BYTES,
        }
    }
}

impl OtlpReceiverConfig {
    /// Accepting exports that carry `token`.
    pub fn with_token(token: &str) -> OtlpReceiverConfig {
        OtlpReceiverConfig {
            token: token.parse().ok(),
            ..OtlpReceiverConfig::default()
        }
    }

    /// Without a token and without anonymous access the receiver is off:
    /// spans from anyone would otherwise fill the database.
    pub fn enabled(&self) -> bool {
        self.token.is_some() || self.allow_anonymous
    }
}

/// The span side of a running sagascope.
#[derive(Debug, Clone, Default)]
pub struct SpanSettings {
    pub service: SpanConfig,
    pub receiver: OtlpReceiverConfig,
}

impl SpanSettings {
    pub fn from_args(args: &SpanArgs) -> anyhow::Result<SpanSettings> {
        let query_url = args
            .spans_query_url
            .as_deref()
            .map(str::trim)
            .filter(|url| !url.is_empty())
            .map(str::to_string);
        let source = match (args.spans_source, query_url) {
            (SpanSourceKind::Otlp, _) => SpanSourceConfig::Store,
            (SpanSourceKind::Jaeger, Some(query_url)) => SpanSourceConfig::Jaeger { query_url },
            (SpanSourceKind::Tempo, Some(query_url)) => SpanSourceConfig::Tempo { query_url },
            (kind, None) => bail!(
                "--spans-source {} needs --spans-query-url (e.g. {})",
                kind.as_str(),
                kind.example_url()
            ),
        };
        let token = args
            .otlp_token
            .clone()
            .filter(|token| !token.expose().trim().is_empty());
        Ok(SpanSettings {
            service: SpanConfig {
                source,
                link_template: args.trace_link_template.clone(),
                cache_ttl: args.spans_cache_ttl,
                request_timeout: Duration::from_secs(10),
                ..SpanConfig::default()
            },
            receiver: OtlpReceiverConfig {
                token,
                allow_anonymous: args.otlp_allow_anonymous,
                max_body_bytes: MAX_OTLP_BODY_BYTES,
            },
        })
    }
}
