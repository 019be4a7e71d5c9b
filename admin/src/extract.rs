//! Request extractors whose every rejection is a problem+json naming what
//! was wrong with the request.

use crate::problem::Problem;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body. Malformed JSON, unknown fields, wrong types, a wrong content
/// type and an oversize body each get their own code.
#[derive(Debug)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_problem(rejection)),
        }
    }
}

fn json_problem(rejection: JsonRejection) -> Problem {
    match rejection {
        JsonRejection::JsonDataError(e) => Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_BODY",
            format!(
                "the body does not match the schema: {}",
                body_text(&e.body_text())
            ),
        ),
        JsonRejection::JsonSyntaxError(e) => Problem::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_JSON",
            format!("the body is not valid JSON: {}", body_text(&e.body_text())),
        ),
        JsonRejection::MissingJsonContentType(_) => Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UNSUPPORTED_MEDIA_TYPE",
            "the body must be JSON with `Content-Type: application/json`",
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "BODY_TOO_LARGE",
                format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            )
        }
        other => Problem::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", other.body_text()),
    }
}

/// serde's messages name the field and the expected type; strip axum's prefix.
fn body_text(text: &str) -> String {
    text.trim_start_matches("Failed to deserialize the JSON body into the target type: ")
        .trim_start_matches("Failed to parse the request body as JSON: ")
        .to_string()
}

/// A path parameter; one that does not parse names no existing object (404).
#[derive(Debug)]
pub struct Id<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Id<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(Self(value)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => Err(Problem::new(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                format!("no such object: {}", e.body_text()),
            )),
            Err(other) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                other.body_text(),
            )),
        }
    }
}

/// Query parameters. Unknown parameters and values of the wrong type are
/// 400 `QUERY_INVALID`, naming the parameter.
#[derive(Debug)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Params<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(Problem::new(
                StatusCode::BAD_REQUEST,
                "QUERY_INVALID",
                rejection
                    .body_text()
                    .trim_start_matches("Failed to deserialize query string: ")
                    .to_string(),
            )),
        }
    }
}

/// Reads a JSON object whose `secret_keys` (optional strings) sit beside the
/// fields of a strict `T` (which denies unknown fields): returns `T` and the
/// secrets present.
pub fn split_secrets<'de, D, T>(
    deserializer: D,
    secret_keys: &[&str],
) -> Result<(T, std::collections::BTreeMap<String, String>), D::Error>
where
    D: serde::Deserializer<'de>,
    T: DeserializeOwned,
{
    use serde::de::Error as _;
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde::Deserialize::deserialize(deserializer)?;
    let mut secrets = std::collections::BTreeMap::new();
    for key in secret_keys {
        match object.remove(*key) {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::String(value)) => {
                secrets.insert((*key).to_string(), value);
            }
            Some(_) => {
                return Err(D::Error::custom(format!(
                    "{key}: invalid type, expected a string"
                )))
            }
        }
    }
    let rest =
        serde_json::from_value(serde_json::Value::Object(object)).map_err(D::Error::custom)?;
    Ok((rest, secrets))
}
