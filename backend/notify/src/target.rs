//! Where a callback may point. The registry sits inside an operator's network: a callback to
//! its loopback or a private range would let any party make it send requests there
//! (server-side request forgery). Such targets are refused unless the configuration allows
//! them (tests, a receiver on the same host).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Why a callback URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("not a URL: {0}")]
    NotAUrl(String),
    #[error("callbacks are HTTPS only")]
    NotHttps,
    #[error("the URL names no host")]
    NoHost,
    #[error("the URL may not carry a user name or password")]
    Credentials,
    #[error("{host} does not resolve: {why}")]
    Unresolved { host: String, why: String },
    #[error("{host} resolves to {addr}, an address on the loopback, a private or a reserved range: callbacks there are refused")]
    Private { host: String, addr: IpAddr },
}

impl TargetError {
    /// A stable code for the API's problem documents.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Private { .. } => "callback_address_refused",
            _ => "callback_url_invalid",
        }
    }
}

/// Checks `raw` and resolves its host: the URL and the addresses to connect to (every one of
/// them allowed). `allow_private` lets loopback and private ranges through.
pub fn check_target(
    raw: &str,
    allow_private: bool,
) -> Result<(reqwest::Url, Vec<SocketAddr>), TargetError> {
    let url = reqwest::Url::parse(raw).map_err(|e| TargetError::NotAUrl(e.to_string()))?;
    if url.scheme() != "https" {
        return Err(TargetError::NotHttps);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(TargetError::Credentials);
    }
    let host = url.host_str().ok_or(TargetError::NoHost)?.to_owned();
    let port = url.port_or_known_default().unwrap_or(443);
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| TargetError::Unresolved {
            host: host.clone(),
            why: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolved {
            host,
            why: "no address".into(),
        });
    }
    if !allow_private {
        if let Some(bad) = addrs.iter().find(|a| !is_public(a.ip())) {
            return Err(TargetError::Private {
                host,
                addr: bad.ip(),
            });
        }
    }
    Ok((url, addrs))
}

/// Whether `ip` is a public unicast address (not loopback, private, link-local, shared, …).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_private_targets_are_refused_unless_allowed() {
        for raw in [
            "https://127.0.0.1:8443/hook",
            "https://[::1]/hook",
            "https://10.1.2.3/hook",
            "https://192.168.0.10/hook",
            "https://172.16.5.5/hook",
            "https://169.254.169.254/latest/meta-data",
            "https://100.64.0.1/hook",
            "https://[fd00::1]/hook",
            "https://[::ffff:127.0.0.1]/hook",
            "https://0.0.0.0/hook",
        ] {
            assert!(
                matches!(check_target(raw, false), Err(TargetError::Private { .. })),
                "{raw}"
            );
        }
        assert!(check_target("https://127.0.0.1:8443/hook", true).is_ok());
        assert!(check_target("https://93.184.215.14/hook", false).is_ok());
    }

    #[test]
    fn only_https_urls_without_credentials_are_taken() {
        assert_eq!(
            check_target("http://93.184.215.14/hook", true),
            Err(TargetError::NotHttps)
        );
        assert_eq!(
            check_target("https://user:pw@93.184.215.14/hook", true),
            Err(TargetError::Credentials)
        );
        assert!(matches!(
            check_target("not a url", true),
            Err(TargetError::NotAUrl(_))
        ));
    }
}
