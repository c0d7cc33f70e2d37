//! Which Host a state-changing form post may be addressed to, and which Origin it may come from: the configured
//! public origins (`REVWALLET_PUBLIC_ORIGINS`), or, when none are configured, loopback on any port. A page of a
//! rebinding domain that resolves to this server sends its own name as Host, so comparing Origin with Host
//! alone would let it through; checking Host against a fixed list does not.

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

use super::error::PageError;
use crate::state::AppState;

/// Refuses a form post (any method but GET, HEAD, OPTIONS, TRACE) whose Host, or whose Origin (scheme, host and
/// port), is not one of the public origins, or that a browser says came from another site. Runs before the
/// session check, so a forged post is refused as such (a browser sends it without the `SameSite=Strict` cookie).
pub async fn refuse_foreign_hosts(
    State(app): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if !request.method().is_safe() {
        let configured = &app.settings.public_origins;
        let text = |name| {
            request
                .headers()
                .get(name)
                .map(|value| value.to_str().unwrap_or("\u{0}"))
        };
        // No Host at all is not a browser (every browser sends one; a rebinding page's is its own name).
        let host_ok = text(header::HOST).is_none_or(|host| allows_host(configured, host));
        let origin_ok = text(header::ORIGIN).is_none_or(|origin| allows_origin(configured, origin));
        if !(host_ok && origin_ok) || super::forms::is_cross_site(request.headers()) {
            return PageError::CrossSite.render(&app);
        }
    }
    next.run(request).await
}

/// "scheme://host[:port]" split into lowercase scheme and authority; the default port made explicit.
fn split_origin(origin: &str) -> Option<(String, String)> {
    let (scheme, authority) = origin.trim().trim_end_matches('/').split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    if authority.is_empty() || authority.contains(['/', '@', '?', '#']) {
        return None;
    }
    Some((scheme.clone(), with_port(&authority, &scheme)))
}

fn with_port(authority: &str, scheme: &str) -> String {
    let has_port = match authority.rsplit_once(':') {
        Some((host, port)) => !port.is_empty() && (!host.contains(':') || host.ends_with(']')),
        None => false,
    };
    if has_port {
        authority.to_owned()
    } else {
        let port = if scheme == "https" { 443 } else { 80 };
        format!("{authority}:{port}")
    }
}

/// The host part of "host:port" (IPv6 in brackets kept).
fn host_of(authority: &str) -> &str {
    match authority.rsplit_once(':') {
        Some((host, _)) if !host.contains(':') || host.ends_with(']') => host,
        _ => authority,
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

pub fn allows_host(configured: &[String], host: &str) -> bool {
    let host = host.trim().to_ascii_lowercase();
    if configured.is_empty() {
        return is_loopback(host_of(&host));
    }
    configured
        .iter()
        .filter_map(|o| split_origin(o))
        .any(|(scheme, authority)| authority == with_port(&host, &scheme))
}

pub fn allows_origin(configured: &[String], origin: &str) -> bool {
    let Some((scheme, authority)) = split_origin(origin) else {
        return false; // `null`, or not an origin at all
    };
    if configured.is_empty() {
        return matches!(scheme.as_str(), "http" | "https") && is_loopback(host_of(&authority));
    }
    configured
        .iter()
        .filter_map(|o| split_origin(o))
        .any(|allowed| allowed == (scheme.clone(), authority.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_default_only_loopback_on_any_port() {
        for host in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:3000",
            "[::1]:80",
            "127.0.0.2",
        ] {
            assert!(allows_host(&[], host), "{host}");
        }
        for host in [
            "evil.example:8080",
            "localhost.evil.example",
            "10.0.0.1",
            "",
        ] {
            assert!(!allows_host(&[], host), "{host}");
        }
        assert!(allows_origin(&[], "http://127.0.0.1:8080"));
        assert!(allows_origin(&[], "https://localhost:8443"));
        assert!(!allows_origin(&[], "http://evil.example:8080"));
        assert!(!allows_origin(&[], "null"));
    }

    #[test]
    fn configured_origins_match_scheme_host_and_port() {
        let configured = ["https://wallet.example".to_owned()];
        assert!(allows_host(&configured, "wallet.example"));
        assert!(allows_host(&configured, "wallet.example:443"));
        assert!(!allows_host(&configured, "wallet.example:8080"));
        assert!(!allows_host(&configured, "127.0.0.1:8080"));
        assert!(allows_origin(&configured, "https://wallet.example"));
        assert!(
            !allows_origin(&configured, "http://wallet.example"),
            "scheme is compared"
        );
        assert!(!allows_origin(&configured, "https://evil.example"));
    }
}
