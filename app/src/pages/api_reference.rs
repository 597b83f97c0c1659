//! `/api`: the reference of `/api/v1`, rendered from its OpenAPI document
//! (built in the server crate from the code, `GET /api/v1/openapi.json`).
//! Our own page rather than a third-party viewer: the CSP allows no
//! foreign scripts, and it matches the rest of the UI in both themes.
//!
//! Operations are grouped by tag, each with its method, path, summary,
//! description, parameters, request body, responses and an example curl
//! line; the schemas follow, each with an anchor that types link to.
//! Every text of the document is rendered as a text node (escaped).
//!
//! JSON objects are walked in sorted key order, never in the map's own
//! order: the server and the wasm build may disagree on whether serde_json
//! preserves insertion order, and hydration needs the same markup.

use leptos::prelude::*;
use leptos_meta::Title;
use serde_json::{Map, Value};

use crate::components::states::{ErrorState, Loading};
use crate::server_fns::error_text;

/// The OpenAPI document as JSON text, put in the Leptos context by the
/// server (`server/src/http/mod.rs`).
#[derive(Debug, Clone)]
pub struct ApiReferenceDocument(pub std::sync::Arc<String>);

/// The OpenAPI document of `/api/v1` as JSON text.
#[server]
pub async fn fetch_api_reference() -> Result<String, ServerFnError> {
    use_context::<ApiReferenceDocument>()
        .map(|document| document.0.as_str().to_string())
        .ok_or_else(|| {
            ServerFnError::new("the OpenAPI document is not available (missing from the context)")
        })
}

/// HTTP methods in the order operations are listed.
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

#[component]
pub fn ApiReferencePage() -> impl IntoView {
    let document = Resource::new(|| (), |_| fetch_api_reference());
    view! {
        <Title text="API reference"/>
        <section class="page page-api" data-test="api-reference">
            <Suspense fallback=|| view! { <Loading what="the API reference"/> }>
                {move || Suspend::new(async move {
                    let parsed = document
                        .await
                        .map_err(|error| error_text(&error))
                        .and_then(|text| {
                            serde_json::from_str::<Value>(&text).map_err(|error| error.to_string())
                        });
                    match parsed {
                        Ok(document) => view! { <Reference document/> }.into_any(),
                        Err(detail) => view! {
                            <ErrorState title="Could not load the API reference".to_string() detail/>
                        }
                        .into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
    .into_any()
}

/// An operation of the document, with where it lives.
#[derive(Debug, Clone)]
struct Operation {
    method: &'static str,
    path: String,
    body: Value,
}

impl Operation {
    fn anchor(&self) -> String {
        format!("op-{}-{}", self.method, slug(&self.path))
    }

    fn summary(&self) -> String {
        text_of(&self.body, "summary")
    }
}

/// A path as an anchor: letters and digits kept, the rest `-`.
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_matches('-')
        .to_string()
}

fn text_of(value: &Value, key: &str) -> String {
    value
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn sorted(map: &Map<String, Value>) -> Vec<(String, Value)> {
    let mut entries: Vec<(String, Value)> =
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn object(value: &Value, key: &str) -> Map<String, Value> {
    value
        .get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn operations(document: &Value) -> Vec<Operation> {
    let mut found = Vec::new();
    for (path, item) in sorted(&object(document, "paths")) {
        for method in METHODS {
            if let Some(body) = item.get(method) {
                found.push(Operation {
                    method,
                    path: path.clone(),
                    body: body.clone(),
                });
            }
        }
    }
    found
}

fn tag_of(operation: &Operation) -> String {
    operation
        .body
        .get("tags")
        .and_then(Value::as_array)
        .and_then(|tags| tags.first())
        .and_then(Value::as_str)
        .unwrap_or("other")
        .to_string()
}

/// Paragraphs of a description (blank-line separated), as text.
fn paragraphs(text: String) -> impl IntoView {
    text.split("\n\n")
        .filter(|p| !p.trim().is_empty())
        .map(|p| view! { <p class="api-text">{p.trim().to_string()}</p> })
        .collect_view()
}

#[component]
fn Reference(document: Value) -> impl IntoView {
    let info = document.get("info").cloned().unwrap_or(Value::Null);
    let openapi_version = text_of(&document, "openapi");
    let api_version = text_of(&info, "version");
    let title = text_of(&info, "title");
    let description = text_of(&info, "description");
    let operations = operations(&document);
    // Tags in the document's order, then any tag only an operation names.
    let mut tags: Vec<(String, String)> = document
        .get("tags")
        .and_then(Value::as_array)
        .map(|tags| {
            tags.iter()
                .map(|t| (text_of(t, "name"), text_of(t, "description")))
                .collect()
        })
        .unwrap_or_default();
    for operation in &operations {
        let tag = tag_of(operation);
        if tags.iter().all(|(name, _)| *name != tag) {
            tags.push((tag, String::new()));
        }
    }
    let tags: Vec<(String, String, Vec<Operation>)> = tags
        .into_iter()
        .map(|(name, text)| {
            let ops: Vec<Operation> = operations
                .iter()
                .filter(|o| tag_of(o) == name)
                .cloned()
                .collect();
            (name, text, ops)
        })
        .filter(|(_, _, ops)| !ops.is_empty())
        .collect();
    let components = document.get("components").cloned().unwrap_or(Value::Null);
    provide_context(SchemaIndex(object(&components, "schemas")));
    let schemas = sorted(&object(&components, "schemas"));
    let security = sorted(&object(&components, "securitySchemes"));
    let global_security = document.get("security").cloned().unwrap_or(Value::Null);

    let toc = tags
        .iter()
        .map(|(name, _, ops)| {
            let links = ops
                .iter()
                .map(|op| {
                    view! {
                        <li>
                            <a href=format!("#{}", op.anchor()) class="api-toc-op">
                                <MethodBadge method=op.method/>
                                <code>{op.path.clone()}</code>
                            </a>
                        </li>
                    }
                })
                .collect_view();
            view! {
                <li class="api-toc-tag">
                    <a href=format!("#tag-{name}")>{name.clone()}</a>
                    <ul>{links}</ul>
                </li>
            }
        })
        .collect_view()
        .into_any();

    let sections = tags
        .into_iter()
        .map(|(name, text, ops)| {
            let ops = ops
                .into_iter()
                .map(|op| {
                    let global = global_security.clone();
                    view! { <OperationView op global_security=global/> }
                })
                .collect_view();
            view! {
                <section class="api-tag" id=format!("tag-{name}") data-test="api-tag" data-tag=name.clone()>
                    <h2>{name.clone()}</h2>
                    {(!text.is_empty()).then(|| view! { <p class="muted">{text}</p> })}
                    {ops}
                </section>
            }
        })
        .collect_view()
        .into_any();

    let security_rows = security
        .into_iter()
        .map(|(name, scheme)| {
            let how = match text_of(&scheme, "type").as_str() {
                "http" => format!("HTTP {}", text_of(&scheme, "scheme")),
                "apiKey" => format!("{} `{}`", text_of(&scheme, "in"), text_of(&scheme, "name")),
                other => other.to_string(),
            };
            view! {
                <tr>
                    <td><code>{name}</code></td>
                    <td>{how}</td>
                    <td>{text_of(&scheme, "description")}</td>
                </tr>
            }
        })
        .collect_view()
        .into_any();

    let schema_views = schemas
        .into_iter()
        .map(|(name, schema)| view! { <SchemaView name schema/> })
        .collect_view()
        .into_any();

    view! {
        <header class="page-head">
            <h1>"API reference"</h1>
            <p class="muted" data-test="api-version">
                {format!("{title} {api_version} · OpenAPI {openapi_version} · ")}
                <a href="/api/v1/openapi.json" data-test="api-openapi-link">"openapi.json"</a>
            </p>
        </header>
        <div class="api-layout">
            <nav class="api-toc" aria-label="Operations">
                <ul>
                    {toc}
                    <li class="api-toc-tag"><a href="#schemas">"schemas"</a></li>
                </ul>
            </nav>
            <div class="api-body">
                <section class="api-intro">
                    {paragraphs(description)}
                    <h2>"Authentication"</h2>
                    <div class="table-wrap">
                        <table class="grid api-table" data-test="api-security">
                            <thead><tr><th>"Scheme"</th><th>"How"</th><th>"Notes"</th></tr></thead>
                            <tbody>{security_rows}</tbody>
                        </table>
                    </div>
                </section>
                {sections}
                <section class="api-schemas" id="schemas">
                    <h2>"Schemas"</h2>
                    {schema_views}
                </section>
            </div>
        </div>
    }
    .into_any()
}

#[component]
fn MethodBadge(method: &'static str) -> impl IntoView {
    view! {
        <span class=format!("api-method api-method-{method}") data-test="api-method">
            {method.to_uppercase()}
        </span>
    }
    .into_any()
}

/// Who may call an operation, from its `security` (else the document's).
fn security_text(operation: &Value, global: &Value) -> String {
    let requirements = operation.get("security").unwrap_or(global);
    let Some(list) = requirements.as_array() else {
        return "none".to_string();
    };
    let options: Vec<String> = list
        .iter()
        .filter_map(Value::as_object)
        .map(|requirement| {
            if requirement.is_empty() {
                "open".to_string()
            } else {
                let mut names: Vec<&str> = requirement.keys().map(String::as_str).collect();
                names.sort_unstable();
                names.join(" + ")
            }
        })
        .collect();
    if options.is_empty() {
        "open".to_string()
    } else {
        options.join(" or ")
    }
}

/// A JSON body that satisfies a schema's required fields, for the curl line.
fn example_of(schema: &Value, schemas: &Map<String, Value>, depth: usize) -> Value {
    if depth > 3 {
        return Value::Null;
    }
    if let Some(name) = ref_name(schema) {
        return schemas
            .get(&name)
            .map(|s| example_of(s, schemas, depth + 1))
            .unwrap_or(Value::Null);
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(fields) = example_of(part, schemas, depth + 1) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    match schema_type(schema).as_deref() {
        Some("object") => {
            let required: Vec<String> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| {
                    r.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let mut fields = Map::new();
            for (name, property) in sorted(&object(schema, "properties")) {
                if required.contains(&name) {
                    fields.insert(name, example_of(&property, schemas, depth + 1));
                }
            }
            Value::Object(fields)
        }
        Some("string") => Value::String("…".into()),
        Some("integer") | Some("number") => Value::from(0),
        Some("boolean") => Value::Bool(false),
        Some("array") => Value::Array(vec![]),
        _ => Value::Null,
    }
}

/// The schema's type, the non-null one of a `["string", "null"]` list.
fn schema_type(schema: &Value) -> Option<String> {
    match schema.get("type")? {
        Value::String(t) => Some(t.clone()),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .map(str::to_string),
        _ => None,
    }
}

fn ref_name(schema: &Value) -> Option<String> {
    schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_string)
}

fn curl_line(op: &Operation, schemas: &Map<String, Value>) -> String {
    let mut path = op.path.clone();
    let mut query = Vec::new();
    for parameter in op
        .body
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let name = text_of(parameter, "name");
        match text_of(parameter, "in").as_str() {
            "path" => path = path.replace(&format!("{{{name}}}"), &format!("<{name}>")),
            "query" if parameter.get("required") == Some(&Value::Bool(true)) => {
                query.push(format!("{name}=<{name}>"))
            }
            _ => {}
        }
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let open = op
        .body
        .get("security")
        .and_then(Value::as_array)
        .is_some_and(|list| {
            list.iter()
                .all(|r| r.as_object().is_some_and(|r| r.is_empty()))
        });
    let mut line = String::from("curl -sS");
    if op.method != "get" {
        line.push_str(&format!(" -X {}", op.method.to_uppercase()));
    }
    if !open {
        line.push_str(" -H \"Authorization: Bearer $SAGASCOPE_TOKEN\"");
    }
    let json_body = op
        .body
        .pointer("/requestBody/content/application~1json/schema")
        .cloned();
    if let Some(schema) = json_body {
        let example = example_of(&schema, schemas, 0);
        line.push_str(" -H 'content-type: application/json'");
        line.push_str(&format!(" -d '{example}'"));
    }
    if op.method == "get" && path.ends_with("/stream") {
        line.push_str(" -N");
    }
    line.push_str(&format!(" \"$SAGASCOPE_URL{path}\""));
    line
}

#[component]
fn OperationView(op: Operation, global_security: Value) -> impl IntoView {
    let schemas_context = use_context::<SchemaIndex>()
        .map(|i| i.0)
        .unwrap_or_default();
    let anchor = op.anchor();
    let summary = op.summary();
    let description = text_of(&op.body, "description");
    let auth = security_text(&op.body, &global_security);
    let curl = curl_line(&op, &schemas_context);
    let parameters: Vec<Value> = op
        .body
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let parameter_rows = parameters
        .into_iter()
        .map(|p| {
            let required = p.get("required") == Some(&Value::Bool(true));
            let schema = p.get("schema").cloned().unwrap_or(Value::Null);
            view! {
                <tr data-test="api-param">
                    <td><code>{text_of(&p, "name")}</code></td>
                    <td>{text_of(&p, "in")}</td>
                    <td><TypeView schema/></td>
                    <td>{if required { "yes" } else { "no" }}</td>
                    <td>{text_of(&p, "description")}</td>
                </tr>
            }
        })
        .collect_view()
        .into_any();
    let has_parameters = op
        .body
        .get("parameters")
        .and_then(Value::as_array)
        .is_some_and(|p| !p.is_empty());
    let request = op.body.get("requestBody").cloned().map(|body| {
        let rows = sorted(&object(&body, "content"))
            .into_iter()
            .map(|(content_type, content)| {
                let schema = content.get("schema").cloned().unwrap_or(Value::Null);
                view! {
                    <li><code>{content_type}</code>": "<TypeView schema/></li>
                }
            })
            .collect_view();
        view! {
            <h4>"Request body"</h4>
            <ul class="api-content">{rows}</ul>
        }
    });
    let responses = sorted(&object(&op.body, "responses"))
        .into_iter()
        .map(|(status, response)| {
            let content = sorted(&object(&response, "content"))
                .into_iter()
                .map(|(content_type, content)| {
                    let schema = content.get("schema").cloned().unwrap_or(Value::Null);
                    view! { <div><code>{content_type}</code>": "<TypeView schema/></div> }
                })
                .collect_view();
            let class = format!(
                "api-status api-status-{}",
                status.chars().next().unwrap_or('x')
            );
            view! {
                <tr data-test="api-response" data-status=status.clone()>
                    <td><span class=class>{status.clone()}</span></td>
                    <td>{text_of(&response, "description")}</td>
                    <td>{content}</td>
                </tr>
            }
        })
        .collect_view()
        .into_any();
    view! {
        <article class="api-op" id=anchor data-test="api-op" data-method=op.method data-path=op.path.clone()>
            <h3 class="api-op-head">
                <MethodBadge method=op.method/>
                <code class="api-path">{op.path.clone()}</code>
                <span class="api-summary">{summary}</span>
            </h3>
            {paragraphs(description)}
            <p class="api-auth muted">"Authentication: " {auth}</p>
            {has_parameters.then(|| view! {
                <h4>"Parameters"</h4>
                <div class="table-wrap">
                    <table class="grid api-table">
                        <thead><tr><th>"Name"</th><th>"In"</th><th>"Type"</th><th>"Required"</th><th>"Description"</th></tr></thead>
                        <tbody>{parameter_rows}</tbody>
                    </table>
                </div>
            })}
            {request}
            <h4>"Responses"</h4>
            <div class="table-wrap">
                <table class="grid api-table">
                    <thead><tr><th>"Status"</th><th>"Description"</th><th>"Body"</th></tr></thead>
                    <tbody>{responses}</tbody>
                </table>
            </div>
            <pre class="api-curl" data-test="api-curl"><code>{curl}</code></pre>
        </article>
    }
    .into_any()
}

/// The document's schemas, for the curl examples.
#[derive(Debug, Clone, Default)]
struct SchemaIndex(Map<String, Value>);

/// A schema's type as text, with links to named schemas.
#[component]
fn TypeView(schema: Value) -> impl IntoView {
    type_view(&schema)
}

fn type_view(schema: &Value) -> AnyView {
    if let Some(name) = ref_name(schema) {
        let href = format!("#schema-{name}");
        return view! { <a class="api-ref" href=href>{name}</a> }.into_any();
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let parts = options
                .iter()
                .enumerate()
                .map(|(i, option)| {
                    view! {
                        {(i > 0).then_some(" | ")}
                        {type_view(option)}
                    }
                })
                .collect_view();
            return view! { <span class="api-type">{parts}</span> }.into_any();
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        let parts = all
            .iter()
            .enumerate()
            .map(|(i, part)| {
                view! {
                    {(i > 0).then_some(" & ")}
                    {type_view(part)}
                }
            })
            .collect_view();
        return view! { <span class="api-type">{parts}</span> }.into_any();
    }
    let nullable = schema
        .get("type")
        .and_then(Value::as_array)
        .is_some_and(|t| t.iter().any(|t| t == "null"));
    let base = match schema_type(schema).as_deref() {
        Some("array") => {
            let items = schema.get("items").cloned().unwrap_or(Value::Null);
            view! { <span class="api-type">"array of "{type_view(&items)}</span> }.into_any()
        }
        Some(kind) => {
            let format = text_of(schema, "format");
            let values: Vec<String> = schema
                .get("enum")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let mut text = kind.to_string();
            if !format.is_empty() {
                text.push_str(&format!(" ({format})"));
            }
            if !values.is_empty() {
                text.push_str(&format!(": {}", values.join(", ")));
            }
            view! { <span class="api-type">{text}</span> }.into_any()
        }
        None if schema.get("type").is_some() => {
            view! { <span class="api-type">"null"</span> }.into_any()
        }
        None => view! { <span class="api-type">"any"</span> }.into_any(),
    };
    view! { {base}{nullable.then_some(" | null")} }.into_any()
}

/// The rows of an object schema's properties.
fn property_rows(schema: &Value) -> AnyView {
    let required: Vec<String> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| {
            r.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let rows = sorted(&object(schema, "properties"))
        .into_iter()
        .map(|(name, property)| {
            let is_required = required.contains(&name);
            let description = text_of(&property, "description");
            view! {
                <tr data-test="api-field">
                    <td><code>{name}</code></td>
                    <td><TypeView schema=property/></td>
                    <td>{if is_required { "yes" } else { "no" }}</td>
                    <td>{description}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <div class="table-wrap">
            <table class="grid api-table">
                <thead><tr><th>"Field"</th><th>"Type"</th><th>"Required"</th><th>"Description"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

/// One part of a schema: its own fields, or its type.
fn schema_body(schema: &Value) -> AnyView {
    if schema.get("properties").is_some() {
        return property_rows(schema);
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(parts) = schema.get(key).and_then(Value::as_array) {
            let label = match key {
                "allOf" => "All of:",
                "oneOf" => "One of:",
                _ => "Any of:",
            };
            let items = parts
                .iter()
                .map(|part| {
                    let description = text_of(part, "description");
                    view! {
                        <li>
                            {(!description.is_empty()).then(|| view! { <p class="api-text">{description.clone()}</p> })}
                            {schema_body(part)}
                        </li>
                    }
                })
                .collect_view();
            return view! {
                <p class="api-text muted">{label}</p>
                <ul class="api-variants">{items}</ul>
            }
            .into_any();
        }
    }
    view! { <p class="api-text"><TypeView schema=schema.clone()/></p> }.into_any()
}

#[component]
fn SchemaView(name: String, schema: Value) -> impl IntoView {
    let description = text_of(&schema, "description");
    view! {
        <article class="api-schema" id=format!("schema-{name}") data-test="api-schema" data-schema=name.clone()>
            <h3><a href=format!("#schema-{name}")>{name.clone()}</a></h3>
            {paragraphs(description)}
            {schema_body(&schema)}
        </article>
    }
    .into_any()
}
