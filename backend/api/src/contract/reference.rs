//! `GET /v1/reference`: the document as a page a person can read, rendered on the server from
//! the same document `GET /v1/openapi.json` serves — no script, nothing from the network, one
//! stylesheet allowed by its hash in the page's Content-Security-Policy.

use std::fmt::Write as _;
use std::sync::OnceLock;

use actix_web::HttpResponse;
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use super::{document, operations, Face};

const STYLE: &str = "body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1b2733;background:#f7f8fa}\
header{background:#12324a;color:#fff;padding:1rem 2rem}header h1{margin:0;font-size:1.4rem}header a{color:#fff}\
main{display:grid;grid-template-columns:19rem minmax(0,1fr);gap:2rem;padding:1rem 2rem}\
nav{position:sticky;top:1rem;align-self:start;font-size:.85rem;max-height:95vh;overflow-y:auto}\
nav a{display:block;color:#12324a;text-decoration:none;padding:.05rem 0;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}\
nav h4{margin:.6rem 0 .1rem;text-transform:uppercase;font-size:.75rem;color:#5b6b7a}\
td code{word-break:break-word}section.op{overflow-x:auto}\
section.op{background:#fff;border:1px solid #d9dee4;border-radius:6px;padding:.8rem 1.2rem;margin:0 0 1rem}\
.m{display:inline-block;min-width:4.2rem;font-weight:700;text-transform:uppercase;font-family:monospace}\
.get{color:#1769aa}.post{color:#2e7d32}.delete{color:#b3261e}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}\
pre{background:#f1f3f5;padding:.6rem;overflow:auto;max-height:28rem;border-radius:4px}\
table{border-collapse:collapse;margin:.4rem 0}td,th{border:1px solid #d9dee4;padding:.2rem .5rem;text-align:left;vertical-align:top}\
h2{margin-top:2rem;border-bottom:2px solid #12324a}h3{margin:.2rem 0}";

/// The page of `face`, built once.
pub fn page(face: Face) -> HttpResponse {
    static PAGES: OnceLock<[String; 2]> = OnceLock::new();
    let pages = PAGES.get_or_init(|| [render(Face::Registry), render(Face::Node)]);
    let html = match face {
        Face::Registry => &pages[0],
        Face::Node => &pages[1],
    };
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            format!(
                "default-src 'none'; style-src 'sha256-{hash}'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "public, max-age=300"))
        .body(html.clone())
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A `$ref` as a link to the schema's section.
fn schema_link(schema: &Value) -> String {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/components/schemas/");
        let anchor = name.split('/').next().unwrap_or(name);
        return format!(
            "<a href=\"#schema-{}\"><code>{}</code></a>",
            esc(anchor),
            esc(name)
        );
    }
    if schema.get("type").and_then(Value::as_str) == Some("array") {
        return format!("array of {}", schema_link(&schema["items"]));
    }
    // A plain type: its name, and what bounds it.
    let mut words = vec![schema["type"].as_str().unwrap_or("any").to_owned()];
    if let Some(format) = schema["format"].as_str() {
        words.push(format!("({format})"));
    }
    if let Some(max) = schema
        .get("maximum")
        .filter(|_| schema["format"] != "uint64")
    {
        words.push(format!("≤ {max}"));
    }
    format!("<code>{}</code>", esc(&words.join(" ")))
}

/// Doc-comment prose as HTML: escaped, with `code` spans.
fn prose(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{}</code>", esc(part))
            } else {
                esc(part)
            }
        })
        .collect()
}

fn render(face: Face) -> String {
    let doc = document(face);
    let title = doc["info"]["title"].as_str().unwrap_or("Lading API");
    let mut ops = operations(doc);
    ops.sort_by(|a, b| (tag_of(a.2), &a.1, &a.0).cmp(&(tag_of(b.2), &b.1, &b.0)));
    let mut html = String::new();
    let _ = write!(
        html,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\
         <meta name=\"viewport\" content=\"width=device-width\"><style>{STYLE}</style></head><body>\
         <header><h1>{t} <small>{v}</small></h1><p>{d}</p><p>The same document as JSON: \
         <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI {o}).</p></header><main><nav>",
        t = esc(title),
        v = esc(doc["info"]["version"].as_str().unwrap_or("")),
        d = prose(doc["info"]["description"].as_str().unwrap_or("")),
        o = esc(doc["openapi"].as_str().unwrap_or("")),
    );
    let mut nav_tag = "";
    for (method, path, op) in &ops {
        if tag_of(op) != nav_tag {
            nav_tag = tag_of(op);
            let _ = write!(html, "<h4>{}</h4>", esc(nav_tag));
        }
        let _ = write!(
            html,
            "<a href=\"#{id}\"><span class=\"m {method}\">{method}</span> {p}</a>",
            id = esc(op["operationId"].as_str().unwrap_or("")),
            p = esc(path),
        );
    }
    html.push_str("<a href=\"#problems\"><b>Problem codes</b></a><a href=\"#schemas\"><b>Schemas</b></a></nav><div>");
    let mut tag = "";
    for (method, path, op) in &ops {
        let this_tag = tag_of(op);
        if this_tag != tag {
            tag = this_tag;
            let _ = write!(html, "<h2>{}</h2>", esc(tag));
        }
        let _ = write!(
            html,
            "<section class=\"op\" id=\"{id}\"><h3><span class=\"m {method}\">{method}</span> <code>{p}</code></h3>",
            id = esc(op["operationId"].as_str().unwrap_or("")),
            p = esc(path),
        );
        for key in ["summary", "description"] {
            if let Some(text) = op.get(key).and_then(Value::as_str) {
                let _ = write!(html, "<p>{}</p>", prose(text));
            }
        }
        if let Some(security) = op.get("security").and_then(Value::as_array) {
            let who: Vec<String> = security
                .iter()
                .filter_map(Value::as_object)
                .map(|s| {
                    if s.is_empty() {
                        "anyone (the signature says who)".to_owned()
                    } else {
                        s.iter()
                            .map(|(k, v)| {
                                let scopes: Vec<&str> = v
                                    .as_array()
                                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                                    .unwrap_or_default();
                                if scopes.is_empty() {
                                    k.clone()
                                } else {
                                    format!("{k} ({})", scopes.join(", "))
                                }
                            })
                            .collect::<Vec<_>>()
                            .join(" + ")
                    }
                })
                .collect();
            let _ = write!(html, "<p><b>Who:</b> {}</p>", esc(&who.join(" or ")));
        }
        if let Some(params) = op.get("parameters").and_then(Value::as_array) {
            html.push_str(
                "<table><tr><th>parameter</th><th>in</th><th>schema</th><th>description</th></tr>",
            );
            for p in params {
                let _ = write!(
                    html,
                    "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(p["name"].as_str().unwrap_or("")),
                    if p["required"] == true {
                        " (required)"
                    } else {
                        ""
                    },
                    esc(p["in"].as_str().unwrap_or("")),
                    schema_link(&p["schema"]),
                    prose(p["description"].as_str().unwrap_or("")),
                );
            }
            html.push_str("</table>");
        }
        if let Some(content) = op
            .get("requestBody")
            .and_then(|b| b.get("content"))
            .and_then(Value::as_object)
        {
            for (media, body) in content {
                let _ = write!(
                    html,
                    "<p><b>Body</b> <code>{}</code>: {}</p>",
                    esc(media),
                    schema_link(&body["schema"])
                );
            }
        }
        html.push_str("<table><tr><th>status</th><th>answer</th><th>body</th></tr>");
        if let Some(responses) = op.get("responses").and_then(Value::as_object) {
            for (status, response) in responses {
                let response = match response.get("$ref").and_then(Value::as_str) {
                    Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or(response),
                    None => response,
                };
                let description = if status == "default" {
                    "A refusal (see the problem codes)"
                } else {
                    response["description"].as_str().unwrap_or("")
                };
                let bodies: Vec<String> = response
                    .get("content")
                    .and_then(Value::as_object)
                    .map(|c| {
                        c.iter()
                            .map(|(m, b)| {
                                format!("<code>{}</code> {}", esc(m), schema_link(&b["schema"]))
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = write!(
                    html,
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    esc(status),
                    esc(description),
                    bodies.join("<br>")
                );
            }
        }
        html.push_str("</table></section>");
    }
    html.push_str("<h2 id=\"problems\">Problem codes</h2><table><tr><th>code</th><th>status</th><th>meaning</th></tr>");
    for code in doc["components"]["x-problem-codes"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let _ = write!(
            html,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            esc(code["code"].as_str().unwrap_or("")),
            code["status"],
            esc(code["meaning"].as_str().unwrap_or(""))
        );
    }
    html.push_str("</table><h2 id=\"schemas\">Schemas</h2>");
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let pretty = serde_json::to_string_pretty(schema).unwrap_or_default();
        let _ = write!(
            html,
            "<section class=\"op\" id=\"schema-{n}\"><h3>{n}</h3>{d}<pre>{p}</pre></section>",
            n = esc(name),
            d = schema
                .get("description")
                .and_then(Value::as_str)
                .map(|d| format!("<p>{}</p>", esc(d)))
                .unwrap_or_default(),
            p = esc(&pretty),
        );
    }
    html.push_str("</div></main></body></html>");
    html
}

fn tag_of(op: &serde_json::Map<String, Value>) -> &str {
    op.get("tags")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(Value::as_str)
        .unwrap_or("other")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_every_operation_and_every_code_and_no_script() {
        for face in [Face::Registry, Face::Node] {
            let html = render(face);
            for (_, _, op) in operations(document(face)) {
                let id = op["operationId"].as_str().unwrap_or_default();
                assert!(html.contains(&format!("id=\"{id}\"")), "{face:?}: {id}");
            }
            for code in crate::codes::Code::ALL {
                assert!(html.contains(&format!("<code>{}</code>", code.as_str())));
            }
            assert!(!html.contains("<script"), "{face:?}");
        }
    }

    #[test]
    fn its_only_style_is_the_one_its_policy_allows() {
        let answer = page(Face::Registry);
        let policy = answer
            .headers()
            .get("Content-Security-Policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let hash =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
        assert!(
            policy.contains(&format!("style-src 'sha256-{hash}'")),
            "{policy}"
        );
        assert!(policy.starts_with("default-src 'none'"));
        assert!(!render(Face::Registry).contains(" style=\""));
    }
}
