//! The OpenAPI document of `/api/v1`, fetched from a spawned app over real
//! HTTP: it parses, is OpenAPI 3.1, documents exactly the routes the
//! router registers under `/api/v1` (read from the router's source, so a
//! route added without `#[utoipa::path]` fails here), every `$ref`
//! resolves, the serde shapes (flatten, internally tagged enums, the
//! `Timestamp` alias) come out right, and every documented read answers
//! from a real route rather than the page fallback.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;

use sagascope::run::{self, Running};
use sagascope_store::test_support::fresh_sqlite_store;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `{saga_id}` and `{id}` alike: parameter names may differ, places not.
fn normalise(path: &str) -> String {
    let mut out = String::new();
    let mut in_param = false;
    for c in path.chars() {
        match c {
            '{' => {
                in_param = true;
                out.push_str("{}");
            }
            '}' => in_param = false,
            _ if in_param => {}
            _ => out.push(c),
        }
    }
    out
}

/// The index of the `)` that closes the `(` at `open`.
fn closing(text: &str, open: usize) -> usize {
    let mut depth = 0;
    for (i, c) in text[open..].char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return open + i;
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in the router source");
}

/// Every `(method, path)` of the `.route("…", get(…).post(…))` calls in
/// `source`, the path prefixed with `prefix`.
fn routes_in(source: &str, prefix: &str) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    let mut rest = source;
    while let Some(at) = rest.find(".route(") {
        let open = at + ".route".len();
        let close = closing(rest, open);
        let call = &rest[open + 1..close];
        let path_start = call.find('"').expect("a route path literal") + 1;
        let path_len = call[path_start..].find('"').unwrap();
        let path = &call[path_start..path_start + path_len];
        let handlers = &call[path_start + path_len + 1..];
        for method in METHODS {
            let plain = handlers.trim_start_matches([',', ' ', '\n']);
            if plain.starts_with(&format!("{method}("))
                || handlers.contains(&format!(").{method}("))
            {
                routes.insert((method.to_string(), normalise(&format!("{prefix}{path}"))));
            }
        }
        rest = &rest[close..];
    }
    routes
}

/// The routes of the `/api/v1` router: the `api` chain of
/// `server/src/http/mod.rs` and the auth routes it merges.
fn router_routes() -> BTreeSet<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let http = std::fs::read_to_string(root.join("src/http/mod.rs")).unwrap();
    let start = http
        .find("let api = Router::new()")
        .expect("the api router in http/mod.rs");
    let end = start + http[start..].find(";\n").unwrap();
    let mut routes = routes_in(&http[start..end], "/api/v1");
    let auth = std::fs::read_to_string(root.join("src/auth/routes.rs")).unwrap();
    routes.extend(routes_in(&auth, "/api/v1"));
    assert!(
        routes.len() > 20,
        "the router source could not be read: {routes:?}"
    );
    routes
}

fn documented(document: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            if item.get(method).is_some() {
                found.insert((method.to_string(), normalise(path)));
            }
        }
    }
    found
}

fn collect_refs(value: &Value, refs: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref") {
                refs.push(target.clone());
            }
            map.values().for_each(|v| collect_refs(v, refs));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

async fn spawn() -> Running {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    run::start(
        fresh_sqlite_store().await,
        None,
        listen,
        Path::new("target/site"),
        sagascope_domain::Thresholds::default(),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_covers_every_route_and_every_ref_resolves() {
    let app = spawn().await;
    let client = reqwest::Client::new();
    let base = format!("http://{}", app.addr);
    let response = client
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let document: Value = response.json().await.unwrap();

    let version = document["openapi"].as_str().unwrap();
    assert!(version.starts_with("3.1."), "openapi {version}");
    assert_eq!(document["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(document["servers"][0]["url"], "/");

    // Exactly the router's routes, no more, no less.
    let routes = router_routes();
    let docs: BTreeSet<(String, String)> = documented(&document)
        .into_iter()
        .filter(|(_, path)| path.starts_with("/api/v1/"))
        .collect();
    let undocumented: Vec<_> = routes.difference(&docs).collect();
    assert!(
        undocumented.is_empty(),
        "routes without #[utoipa::path] in server/src/http/openapi.rs: {undocumented:?}"
    );
    let phantom: Vec<_> = docs.difference(&routes).collect();
    assert!(phantom.is_empty(), "documented but not routed: {phantom:?}");

    // Every $ref points into this document.
    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    assert!(refs.len() > 50, "{} refs", refs.len());
    for target in &refs {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("external ref {target}"));
        assert!(
            document.pointer(pointer).is_some(),
            "unresolved $ref {target}"
        );
    }

    // Every operation: a known tag, a summary, a success answer; mutations
    // say how to authenticate, cookie sessions with the CSRF header.
    let tags: BTreeSet<&str> = document["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    for (path, item) in document["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let what = format!("{method} {path}");
            let tag = operation["tags"][0].as_str().unwrap_or_default();
            assert!(tags.contains(tag), "{what}: tag `{tag}`");
            assert!(
                !operation["summary"].as_str().unwrap_or_default().is_empty(),
                "{what}: summary"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{what}: no 2xx"
            );
            if method == "post" && path.starts_with("/api/v1/") && path != "/api/v1/auth/login" {
                let security = operation["security"].to_string();
                assert!(
                    security.contains("csrf_token") && security.contains("api_token"),
                    "{what}: security {security}"
                );
                for status in ["401", "403"] {
                    assert!(responses.contains_key(status), "{what}: {status}");
                }
            }
        }
    }
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api_token"]["scheme"], "bearer");
    assert_eq!(schemes["csrf_token"]["name"], "x-csrf-token");
    assert_eq!(schemes["session_cookie"]["in"], "cookie");

    // serde shapes: `SagaDetail` flattens `SagaSummary`; `StreamMessage`
    // is tagged by `type`; `Timestamp` is a date-time string.
    let schemas = &document["components"]["schemas"];
    let detail = schemas["SagaDetail"].to_string();
    assert!(
        detail.contains("#/components/schemas/SagaSummary") && detail.contains("\"events\""),
        "SagaDetail: {detail}"
    );
    let variants = schemas["StreamMessage"]["oneOf"].as_array().unwrap();
    let kinds: BTreeSet<String> = variants
        .iter()
        .flat_map(|v| v["properties"]["type"]["enum"].as_array().cloned().unwrap())
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        kinds,
        ["event", "ingest_error", "merged", "saga"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        schemas["SagaSummary"]["properties"]["started_at"]["format"],
        "date-time"
    );
    assert_eq!(
        schemas["MetricsWindow"]["enum"],
        serde_json::json!(["15m", "1h", "6h", "24h", "7d"])
    );
    let sse = &document["paths"]["/api/v1/stream"]["get"]["responses"]["200"]["content"];
    assert!(sse.get("text/event-stream").is_some(), "{sse}");

    // The reference page (`/api`, server-rendered) shows every operation
    // and every schema, escapes the document's text, and gives a curl line
    // with the bearer token.
    let page = client.get(format!("{base}/api")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(
        html.matches("data-test=\"api-op\"").count(),
        documented(&document).len()
    );
    assert_eq!(
        html.matches("data-test=\"api-schema\"").count(),
        schemas.as_object().unwrap().len()
    );
    assert!(html.contains("id=\"schema-SagaDetail\""));
    assert!(html.contains("curl -sS -X POST -H \"Authorization: Bearer $SAGASCOPE_TOKEN\""));
    assert!(html.contains("Bearer &lt;--otlp-token&gt;") && !html.contains("<--otlp-token>"));

    // Every documented read is a real route: not the HTML page fallback,
    // and never a server error (path parameters filled with `x`).
    for (method, path) in &docs {
        if method != "get" {
            continue;
        }
        let url = path.replace("{}", "x");
        let response = client.get(format!("{base}{url}")).send().await.unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        assert!(!status.is_server_error(), "GET {url}: {status}");
        assert!(
            !content_type.starts_with("text/html"),
            "GET {url} fell through to the pages ({status}, {content_type})"
        );
    }
    app.shutdown().await;
}
