//! ACS's access-key scheme: HMAC-SHA256, with the base64-decoded key, over
//! `"{METHOD}\n{path and query}\n{x-ms-date};{host};{x-ms-content-sha256}"`, the body's hash and
//! the date sent alongside, since the service recomputes both.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use reqwest::{Method, Url};
use sha2::{Digest, Sha256};

/// RFC 7231's IMF-fixdate, as chrono formats it.
pub const HTTP_DATE: &str = "%a, %d %b %Y %H:%M:%S GMT";

/// The headers that sign a request: `x-ms-date`, `x-ms-content-sha256` and `Authorization`.
pub fn headers(
    key: &[u8],
    method: &Method,
    url: &Url,
    date: &str,
    body: &[u8],
) -> [(&'static str, String); 3] {
    let hash = BASE64.encode(Sha256::digest(body));
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path = format!("{path}?{query}");
    }
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (host, None) => host.unwrap_or_default().to_owned(),
        (None, Some(_)) => String::new(),
    };
    let to_sign = format!("{method}\n{path}\n{date};{host};{hash}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(to_sign.as_bytes());
    let signature = BASE64.encode(mac.finalize().into_bytes());
    [
        ("x-ms-date", date.to_owned()),
        ("x-ms-content-sha256", hash),
        (
            "Authorization",
            format!(
                "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature={signature}"
            ),
        ),
    ]
}
