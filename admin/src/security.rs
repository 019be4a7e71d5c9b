//! Headers every response carries, and the CORS policy. Rules: every
//! response says `nosniff`, may not be framed and sends no referrer; API
//! answers are never cached (they carry tokens and personal data); over
//! HTTPS, HSTS. A browser request from another origin is let in only when
//! that origin is configured (`[admin] cors_origins`, the panel's origin
//! when it is served elsewhere): its preflight gets the allowed methods and
//! headers, and its answer `Access-Control-Allow-Origin`; any other
//! cross-origin request is refused with 403 `CORS_ORIGIN_REFUSED` before it
//! reaches a handler (nothing is changed). Requests without `Origin` (curl,
//! phones, other nodes) and same-origin requests are not affected.

use crate::problem::Problem;
use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Why a configured origin is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an origin (scheme://host[:port], http or https, no path)")]
pub struct BadOrigin(pub String);

/// The node's HTTP security policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// Origins other than the node's own that browsers may call from.
    cors_origins: BTreeSet<String>,
    /// Served over HTTPS: send `Strict-Transport-Security`.
    pub https: bool,
}

impl SecurityPolicy {
    /// A policy letting `origins` in (each `scheme://host[:port]`).
    pub fn new(origins: &[String], https: bool) -> Result<Self, BadOrigin> {
        let cors_origins = origins
            .iter()
            .map(|o| normalise_origin(o).ok_or_else(|| BadOrigin(o.clone())))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            cors_origins,
            https,
        })
    }

    fn allows(&self, origin: &str, headers: &HeaderMap) -> bool {
        let Some(origin) = normalise_origin(origin) else {
            return false;
        };
        self.cors_origins.contains(&origin) || same_origin(&origin, headers, self.https)
    }
}

/// `scheme://host[:port]` in lower case, without a default port.
fn normalise_origin(text: &str) -> Option<String> {
    let lower = text.trim().to_ascii_lowercase();
    let (scheme, rest) = lower.split_once("://")?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return None,
    };
    let valid = !rest.is_empty()
        && rest
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
    if !valid {
        return None;
    }
    let host = rest.strip_suffix(default_port).unwrap_or(rest);
    Some(format!("{scheme}://{host}"))
}

fn same_origin(origin: &str, headers: &HeaderMap, https: bool) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return false;
    };
    let scheme = if https { "https" } else { "http" };
    normalise_origin(&format!("{scheme}://{host}")).as_deref() == Some(origin)
}

const METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &str = "authorization, content-type, idempotency-key";
const EXPOSED_HEADERS: &str = "retry-after, location";

/// The middleware: CORS first, then the headers of every response.
pub async fn apply(
    State(policy): State<Arc<SecurityPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
        .map(str::to_string);
    let is_api = request.uri().path().starts_with("/api/");
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    let allowed = origin
        .as_deref()
        .map(|o| policy.allows(o, request.headers()));
    let mut response = match (&origin, allowed) {
        (Some(o), Some(false)) => Problem::new(
            StatusCode::FORBIDDEN,
            "CORS_ORIGIN_REFUSED",
            format!("requests from the origin `{o}` are not allowed (`[admin] cors_origins`)"),
        )
        .into_response(),
        (Some(_), _) if preflight => {
            let mut r = StatusCode::NO_CONTENT.into_response();
            let h = r.headers_mut();
            h.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(METHODS),
            );
            h.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            h.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
            r
        }
        _ => next.run(request).await,
    };
    let h = response.headers_mut();
    if let (Some(o), Some(true)) = (&origin, allowed) {
        if let Ok(value) = HeaderValue::from_str(o) {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSED_HEADERS),
            );
        }
    }
    h.append(header::VARY, HeaderValue::from_static("origin"));
    let fixed: [(HeaderName, &'static str); 5] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    if is_api {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if policy.https {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_normalised_and_checked() {
        let policy =
            SecurityPolicy::new(&["HTTPS://Panel.Example:443".into()], false).expect("valid");
        let none = HeaderMap::new();
        assert!(policy.allows("https://panel.example", &none));
        assert!(!policy.allows("https://panel.example:8443", &none));
        assert!(!policy.allows("http://panel.example", &none));
        assert!(!policy.allows("null", &none));
        let mut own = HeaderMap::new();
        own.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(policy.allows("http://127.0.0.1:8080", &own), "same origin");
        assert!(!policy.allows("http://127.0.0.1:8081", &own));
        for bad in ["panel.example", "ftp://x", "https://x/path", "https://"] {
            assert_eq!(
                SecurityPolicy::new(&[bad.into()], false),
                Err(BadOrigin(bad.into()))
            );
        }
    }
}
