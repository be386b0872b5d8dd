//! The daemon's own proxy settings (HTTP_PROXY, HTTPS_PROXY, NO_PROXY, FTP_PROXY, ALL_PROXY, in
//! either letter case; lower case wins where both are set and differ), which every RUN step gets
//! unless its LLB carries proxy settings of its own.

use nodekit_proto::pb::ProxyEnv;

const NAMES: [&str; 5] = [
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "ftp_proxy",
    "all_proxy",
];

/// Reads the settings with `lookup` (the environment, in the daemon).
pub fn proxy_from(lookup: impl Fn(&str) -> Option<String>) -> Option<ProxyEnv> {
    let value = |name: &str| {
        lookup(name)
            .filter(|v| !v.is_empty())
            .or_else(|| lookup(&name.to_uppercase()).filter(|v| !v.is_empty()))
            .unwrap_or_default()
    };
    let proxy = ProxyEnv {
        http_proxy: value(NAMES[0]),
        https_proxy: value(NAMES[1]),
        no_proxy: value(NAMES[2]),
        ftp_proxy: value(NAMES[3]),
        all_proxy: value(NAMES[4]),
    };
    (proxy != ProxyEnv::default()).then_some(proxy)
}

/// Each setting with its upper-case variable name.
pub fn named(proxy: &ProxyEnv) -> [(&'static str, &str); 5] {
    [
        ("HTTP_PROXY", &proxy.http_proxy),
        ("HTTPS_PROXY", &proxy.https_proxy),
        ("FTP_PROXY", &proxy.ftp_proxy),
        ("NO_PROXY", &proxy.no_proxy),
        ("ALL_PROXY", &proxy.all_proxy),
    ]
}

/// The settings for the log, passwords masked (`http://user:***@proxy:3128`).
pub fn masked(proxy: &ProxyEnv) -> String {
    named(proxy)
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{k}={}", mask_password(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mask_password(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").map_or(("", url), |(s, r)| (s, r));
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split(':').next().unwrap_or_default();
    let prefix = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{prefix}{user}:***@{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn lower_case_wins_and_either_case_is_read() {
        let proxy = proxy_from(env(&[
            ("HTTP_PROXY", "http://upper:1"),
            ("http_proxy", "http://lower:1"),
            ("NO_PROXY", "localhost"),
        ]))
        .expect("settings");
        assert_eq!(proxy.http_proxy, "http://lower:1");
        assert_eq!(proxy.no_proxy, "localhost");
        assert_eq!(proxy.https_proxy, "");
        assert_eq!(proxy_from(env(&[])), None);
    }

    #[test]
    fn passwords_are_masked_in_the_log() {
        let proxy = ProxyEnv {
            http_proxy: "http://alice:s3cret@proxy:3128".into(),
            no_proxy: "10.0.0.0/8".into(),
            ..Default::default()
        };
        let line = masked(&proxy);
        assert_eq!(
            line,
            "HTTP_PROXY=http://alice:***@proxy:3128 NO_PROXY=10.0.0.0/8"
        );
        assert!(!line.contains("s3cret"));
    }
}
