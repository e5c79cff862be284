//! The HTTP side of the remote backends: the shared agent (TLS roots, timeouts, keep-alive),
//! the API key (loaded, sent, never shown) and error messages a user can act on.
//!
//! It does not stream or parse answers (see `stream.rs`) and does not decide about backoff.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::RemoteError;

/// An API key. Its `Debug` does not show it; it only leaves through [`ApiKey::bearer`].
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// The `Authorization` header value.
    pub(crate) fn bearer(&self) -> String {
        format!("Bearer {}", self.0)
    }

    fn secret(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// The key from `file` when one is configured, else from the environment variable `env`.
pub(crate) fn load_api_key(file: Option<&Path>, env: &str) -> Result<Option<ApiKey>, RemoteError> {
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).map_err(|e| RemoteError::KeyFile {
            path: path.to_owned(),
            reason: e.kind().to_string(),
        })?;
        let key = text.trim();
        if key.is_empty() || key.contains(['\n', '\r']) {
            return Err(RemoteError::KeyFile {
                path: path.to_owned(),
                reason: "expected one line holding the key".into(),
            });
        }
        return Ok(Some(ApiKey(key.into())));
    }
    Ok(std::env::var(env)
        .ok()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .map(|k| ApiKey(k.into())))
}

/// One agent for all requests of a backend: connections are kept alive and reused.
pub(crate) fn agent(ca_file: Option<&Path>, timeout: Duration) -> Result<ureq::Agent, RemoteError> {
    use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .into_iter()
        .map(|c| Certificate::from_der(c.as_ref()).to_owned())
        .collect();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|e| RemoteError::CaFile {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let before = roots.len();
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(c)) => roots.push(c.to_owned()),
                Ok(_) => {}
                Err(e) => {
                    return Err(RemoteError::CaFile {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })
                }
            }
        }
        if roots.len() == before {
            return Err(RemoteError::CaFile {
                path: path.to_owned(),
                reason: "no PEM certificate in it".into(),
            });
        }
    }
    // No system roots (a minimal container): fall back to the bundled Mozilla roots.
    let roots = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::from(roots)
    };
    let tls = TlsConfig::builder().root_certs(roots).build();
    let config = ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .max_idle_connections_per_host(8)
        .max_idle_age(Duration::from_secs(60))
        .user_agent(concat!("ghostline/", env!("CARGO_PKG_VERSION")))
        .build();
    Ok(ureq::Agent::new_with_config(config))
}

/// `scheme://host[:port]/path` without `user:password@`.
pub(crate) fn without_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}://{host}{path}")
}

/// The server could not be reached at all (later requests will fail the same way).
pub(crate) fn is_connection_error(e: &ureq::Error) -> bool {
    use ureq::Error as E;
    match e {
        E::Io(_) | E::ConnectionFailed | E::HostNotFound | E::Tls(_) | E::Rustls(_) => true,
        E::Timeout(t) => matches!(
            t,
            ureq::Timeout::Connect | ureq::Timeout::Resolve | ureq::Timeout::RecvResponse
        ),
        _ => false,
    }
}

/// The request's own time limit fired (its deadline), not a server problem.
pub(crate) fn is_timeout(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Timeout(t) if !matches!(
            t,
            ureq::Timeout::Connect | ureq::Timeout::Resolve | ureq::Timeout::RecvResponse
        )
    )
}

/// A message for the user about a failed exchange with the server at `shown`.
pub(crate) fn describe(e: &ureq::Error, shown: &str, key: Option<&ApiKey>) -> String {
    use ureq::Error as E;
    let what = match e {
        E::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused (is the server running?)".to_owned()
            }
            _ => format!("network error: {io}"),
        },
        E::HostNotFound => "host not found".to_owned(),
        E::ConnectionFailed => "connection failed".to_owned(),
        E::Timeout(t) => format!("no answer in time ({t})"),
        E::Tls(_) | E::Rustls(_) => {
            format!("TLS failed: {e} (for a private CA, set ghostline.remote.caFile)")
        }
        other => other.to_string(),
    };
    scrub(
        &format!("ghostline: the model server at {shown} is unavailable: {what}"),
        key,
    )
}

/// A message for an HTTP error status.
pub(crate) fn status_message(status: u16, body: &str, shown: &str, key: Option<&ApiKey>) -> String {
    let hint = match status {
        401 | 403 => " (check GHOSTLINE_API_KEY or ghostline.remote.apiKeyFile)",
        404 => " (check ghostline.backend and ghostline.remote.endpoint)",
        503 => " (the server may still be loading its model)",
        _ => "",
    };
    let detail: String = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(200)
        .collect();
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    };
    scrub(
        &format!("ghostline: the model server at {shown} answered HTTP {status}{hint}{detail}"),
        key,
    )
}

/// Statuses that the next request would get too: back off instead of asking on every key.
pub(crate) fn status_is_persistent(status: u16) -> bool {
    matches!(status, 401 | 403 | 404 | 405) || status >= 500
}

/// `message` with the key replaced by `***`, wherever a server or library echoed it.
pub(crate) fn scrub(message: &str, key: Option<&ApiKey>) -> String {
    match key {
        Some(k) if !k.secret().is_empty() => message.replace(k.secret(), "***"),
        _ => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_not_shown() {
        assert_eq!(
            without_userinfo("https://me:pw@gpu.example:8443/v1"),
            "https://gpu.example:8443/v1"
        );
        assert_eq!(without_userinfo("http://h:1"), "http://h:1");
    }

    #[test]
    fn keys_are_scrubbed_and_hidden_from_debug() {
        let k = ApiKey("sk-secret".into());
        assert_eq!(format!("{k:?}"), "ApiKey(***)");
        assert_eq!(scrub("bad key sk-secret!", Some(&k)), "bad key ***!");
        let m = status_message(401, "invalid key sk-secret", "http://h", Some(&k));
        assert!(!m.contains("sk-secret") && m.contains("401"), "{m}");
    }
}
