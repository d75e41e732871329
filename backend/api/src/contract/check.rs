//! Every answer checked against the published document, when `LADING_CONTRACT_CHECK=1` (the
//! test harness sets it for every process it starts): its status must be one the operation
//! lists, its media type one that status lists, and a JSON body must validate against that
//! media type's schema. An answer that does not is replaced by `500 contract_violation`
//! saying why, so the test that provoked it fails where it happened.
//!
//! Streams (a customs export, Server-Sent Events) are checked by status and media type only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use actix_web::body::{self, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{json, Value};

use super::{document, Face};
use crate::problem::ApiError;

/// The base URI the document is registered under for validation.
const BASE: &str = "https://lading.dev/openapi.json";

/// Whether answers are checked (read once).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| std::env::var("LADING_CONTRACT_CHECK").is_ok_and(|v| v == "1"))
}

/// The check, as middleware (`actix_web::middleware::from_fn`); the face is the app's
/// [`Face`] data.
pub async fn answers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let face = req.app_data::<Face>().copied().unwrap_or(Face::Registry);
    checked(face, req, next).await
}

async fn checked(
    face: Face,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let method = req.method().as_str().to_ascii_lowercase();
    let path = req.path().to_owned();
    let res = next.call(req).await?.map_into_boxed_body();
    if !enabled() {
        return Ok(res);
    }
    let status = res.status().as_u16();
    let media = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_ascii_lowercase());
    let expected = match expectation(face, &method, &path, status, media.as_deref()) {
        Ok(expected) => expected,
        Err(why) => return Ok(violation(res, &method, &path, status, &why)),
    };
    let Some(pointer) = expected else {
        return Ok(res);
    };
    let (request, response) = res.into_parts();
    let (response, body) = response.into_parts();
    let bytes = match body::to_bytes(body).await {
        Ok(bytes) => bytes,
        Err(_) => {
            let res = ServiceResponse::new(request, response.set_body(BoxBody::new(())));
            return Ok(violation(
                res,
                &method,
                &path,
                status,
                "the body could not be read",
            ));
        }
    };
    let verdict = serde_json::from_slice::<Value>(&bytes)
        .map_err(|e| format!("the body is not JSON: {e}"))
        .and_then(|value| validate(face, &pointer, &value));
    let res = ServiceResponse::new(request, response.set_body(BoxBody::new(bytes)));
    match verdict {
        Ok(()) => Ok(res),
        Err(why) => Ok(violation(res, &method, &path, status, &why)),
    }
}

/// What the document says of this answer: an error when it contradicts it, else the pointer
/// of the schema its body must validate against (`None` for a body not to be read).
fn expectation(
    face: Face,
    method: &str,
    path: &str,
    status: u16,
    media: Option<&str>,
) -> Result<Option<String>, String> {
    let doc = document(face);
    let operation = find_path(doc, path).and_then(|template| {
        doc["paths"][&template]
            .get(method)
            .map(|_| format!("/paths/{}/{method}", escape(&template)))
    });
    let response_pointer = match operation {
        Some(op) => {
            let responses = doc
                .pointer(&op)
                .and_then(|o| o.get("responses"))
                .ok_or_else(|| format!("{op} has no responses"))?;
            let key = [
                status.to_string(),
                format!("{}XX", status / 100),
                "default".into(),
            ]
            .into_iter()
            .find(|k| responses.get(k).is_some())
            .ok_or_else(|| format!("status {status} is not listed for {method} {path}"))?;
            format!("{op}/responses/{}", escape(&key))
        }
        // A route the document does not have, or a method it does not: only a refusal.
        None if status >= 400 => "/components/responses/Problem".to_owned(),
        None => return Err(format!("{method} {path} is not in the document")),
    };
    let mut response_pointer = response_pointer;
    if let Some(Value::String(reference)) =
        doc.pointer(&response_pointer).and_then(|r| r.get("$ref"))
    {
        response_pointer = reference.trim_start_matches('#').to_owned();
    }
    let response = doc
        .pointer(&response_pointer)
        .ok_or_else(|| format!("the document has no response at {response_pointer}"))?;
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        return match media {
            None => Ok(None),
            Some(media) => Err(format!(
                "status {status} has no body in the document, the answer is {media}"
            )),
        };
    };
    let media = media.ok_or_else(|| format!("status {status} answered without a Content-Type"))?;
    if !content.contains_key(media) {
        return Err(format!(
            "status {status} is {media}; the document says {}",
            content.keys().cloned().collect::<Vec<_>>().join(" or ")
        ));
    }
    if media.ends_with("json") {
        Ok(Some(format!(
            "{response_pointer}/content/{}/schema",
            escape(media)
        )))
    } else {
        Ok(None)
    }
}

/// The path template of the document that `path` fits; literal segments win over parameters
/// (`/v1/checkpoints/consistency` before `/v1/checkpoints/{size}`).
fn find_path(doc: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (part, segment) in parts.iter().zip(&segments) {
                if part.starts_with('{') {
                    if segment.is_empty() {
                        return None;
                    }
                } else if part == segment {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, template))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, template)| template.clone())
}

/// RFC 6901 escaping of one reference token.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn validate(face: Face, pointer: &str, value: &Value) -> Result<(), String> {
    let validator = validator(face, pointer)?;
    let errors: Vec<String> = validator
        .iter_errors(value)
        .take(3)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("the body breaks {pointer}: {}", errors.join("; ")))
    }
}

type Validators = Mutex<HashMap<String, Arc<jsonschema::Validator>>>;

fn validator(face: Face, inner: &str) -> Result<Arc<jsonschema::Validator>, String> {
    static CACHE: OnceLock<Validators> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let key = format!("{face:?}{inner}");
    if let Some(v) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(&key)
    {
        return Ok(v.clone());
    }
    let doc = document(face);
    let resource = jsonschema::Resource::from_contents(doc.clone()).map_err(|e| e.to_string())?;
    let built = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .with_resource(BASE, resource)
        // A URI fragment may not hold braces (path templates): RFC 6901 §6 percent-encodes them.
        .build(
            &json!({ "$ref": format!("{BASE}#{}", inner.replace('{', "%7B").replace('}', "%7D")) }),
        )
        .map_err(|e| format!("the document's schema at {inner} does not build: {e}"))?;
    let built = Arc::new(built);
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(key, built.clone());
    Ok(built)
}

fn violation(
    res: ServiceResponse<BoxBody>,
    method: &str,
    path: &str,
    status: u16,
    why: &str,
) -> ServiceResponse<BoxBody> {
    tracing::error!(
        method,
        path,
        status,
        why,
        "an answer contradicts the published contract"
    );
    let error = ApiError::ContractViolation {
        detail: format!(
            "{method} {path} answered {status}, which contradicts the OpenAPI document: {why}"
        ),
    };
    let answer: HttpResponse = error.error_response();
    res.into_response(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_segments_win_over_parameters() {
        let doc = document(Face::Registry);
        assert_eq!(
            find_path(doc, "/v1/checkpoints/consistency").as_deref(),
            Some("/v1/checkpoints/consistency")
        );
        assert_eq!(
            find_path(doc, "/v1/checkpoints/12").as_deref(),
            Some("/v1/checkpoints/{size}")
        );
        assert_eq!(find_path(doc, "/v1/nothing"), None);
    }

    #[test]
    fn an_answer_the_document_does_not_list_is_a_violation() {
        // A document read answered with a status the document does not list for it.
        let err = expectation(
            Face::Registry,
            "get",
            "/v1/healthz",
            200,
            Some("application/json"),
        );
        assert!(err.is_err(), "{err:?}");
        let ok = expectation(
            Face::Registry,
            "get",
            "/healthz",
            200,
            Some("application/json"),
        );
        assert!(ok.unwrap().is_some());
        let wrong_media = expectation(Face::Registry, "get", "/healthz", 200, Some("text/html"));
        assert!(wrong_media.is_err());
        let refusal = expectation(
            Face::Registry,
            "get",
            "/v1/documents/X",
            404,
            Some("application/problem+json"),
        );
        assert!(refusal.unwrap().is_some());
    }

    #[test]
    fn bodies_are_validated_against_the_schema_of_their_answer() {
        let pointer = expectation(
            Face::Registry,
            "get",
            "/readyz",
            200,
            Some("application/json"),
        )
        .unwrap()
        .unwrap();
        assert!(validate(
            Face::Registry,
            &pointer,
            &json!({ "status": "ready", "size": 3 })
        )
        .is_ok());
        let err = validate(
            Face::Registry,
            &pointer,
            &json!({ "status": "ready", "size": "three" }),
        )
        .unwrap_err();
        assert!(err.contains("size"), "{err}");
        let problem = expectation(
            Face::Registry,
            "get",
            "/v1/documents/X",
            404,
            Some("application/problem+json"),
        )
        .unwrap()
        .unwrap();
        assert!(validate(Face::Registry, &problem, &json!({ "title": "Not Found" })).is_err());
    }
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn schemas_under_path_templates_build() {
        let pointer = expectation(
            Face::Registry,
            "get",
            "/v1/documents/ACME1",
            200,
            Some("application/json"),
        )
        .unwrap()
        .unwrap();
        assert!(pointer.contains("{reference}"));
        assert!(validate(Face::Registry, &pointer, &json!({})).is_err());
    }
}
