//! Provider endpoint checks the gateway can answer itself (`challenge: answer`). Signed checks
//! are answered only after they verified; Dropbox's GET check is unsigned by design.

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use http::{HeaderMap, Method, Response, Uri};
use http_body_util::Full;
use serde_json::{Value, json};

use crate::verify::crypto::{Algorithm, Encoding};
use crate::verify::form_json::parse_form;
use crate::verify::{Key, KeyMaterial, Verified};

/// The schemes whose endpoint check the gateway knows how to answer.
const ANSWERED: &[&str] = &["slack", "twitch", "zoom", "discord", "dropbox"];

pub fn answers(scheme: &str) -> bool {
    ANSWERED.contains(&scheme)
}

/// Dropbox checks an endpoint with `GET ?challenge=<text>` and expects the text back; the
/// check carries no signature, and the answer reveals nothing.
pub fn unsigned_answer(scheme: &str, method: &Method, uri: &Uri) -> Option<Response<Full<Bytes>>> {
    if scheme != "dropbox" || method != Method::GET {
        return None;
    }
    let (_, challenge) = parse_form(uri.query()?).into_iter().find(|(name, _)| name == "challenge")?;
    let mut response = text(challenge);
    response.headers_mut().insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Some(response)
}

/// The answer to a verified request that is the scheme's endpoint check; `None` for an
/// ordinary delivery, which is forwarded.
pub fn verified_answer(
    scheme: &str,
    keys: &[Key],
    verified: &Verified,
    headers: &HeaderMap,
    body: &[u8],
) -> Option<Response<Full<Bytes>>> {
    let event = || serde_json::from_slice::<Value>(body).ok();
    match scheme {
        "slack" => {
            let event = event()?;
            let challenge = (event["type"] == "url_verification").then(|| event["challenge"].as_str())??;
            Some(json_response(&json!({ "challenge": challenge })))
        }
        "twitch" => {
            let kind = headers.get("twitch-eventsub-message-type")?;
            let challenge = (kind == "webhook_callback_verification")
                .then(|| event()?["challenge"].as_str().map(str::to_owned))??;
            Some(text(challenge))
        }
        "zoom" => {
            let event = event()?;
            let plain =
                (event["event"] == "endpoint.url_validation").then(|| event["payload"]["plainToken"].as_str())??;
            // The answer proves we hold the secret token: the one this request verified under.
            let KeyMaterial::Shared(secret) = &keys.get(verified.key_index)?.material else { return None };
            let encrypted = Encoding::Hex.encode(&Algorithm::Sha256.mac(secret, [plain.as_bytes()]));
            Some(json_response(&json!({ "plainToken": plain, "encryptedToken": encrypted })))
        }
        "discord" => (event()?["type"] == 1).then(|| json_response(&json!({ "type": 1 }))),
        _ => None,
    }
}

fn text(body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    response
}

fn json_response(value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt as _;

    use crate::config::secret::Secret;

    use super::*;

    fn body_of(response: Response<Full<Bytes>>) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
        let Ok(collected) = runtime.block_on(response.into_body().collect());
        String::from_utf8(collected.to_bytes().to_vec()).expect("utf-8")
    }

    fn verified() -> Verified {
        Verified { key_index: 0, timestamp: None, delivery_id: None }
    }

    #[test]
    fn slack_url_verification_echoes_the_challenge() {
        let body = br#"{"token":"t","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let response = verified_answer("slack", &[], &verified(), &HeaderMap::new(), body).expect("answered");
        assert_eq!(body_of(response), r#"{"challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}"#);
        assert!(
            verified_answer("slack", &[], &verified(), &HeaderMap::new(), br#"{"type":"event_callback"}"#).is_none()
        );
    }

    #[test]
    fn twitch_verification_returns_the_raw_challenge() {
        let mut headers = HeaderMap::new();
        headers.insert("twitch-eventsub-message-type", HeaderValue::from_static("webhook_callback_verification"));
        let body = br#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{}}"#;
        let response = verified_answer("twitch", &[], &verified(), &headers, body).expect("answered");
        assert_eq!(response.headers()[CONTENT_TYPE], "text/plain; charset=utf-8");
        assert_eq!(body_of(response), "pogchamp-kappa-360noscope-vohiyo");
        headers.insert("twitch-eventsub-message-type", HeaderValue::from_static("notification"));
        assert!(verified_answer("twitch", &[], &verified(), &headers, body).is_none());
    }

    #[test]
    fn zoom_validation_is_keyed_with_the_verifying_secret() {
        let keys = [Key::shared("secret-token")];
        let body = br#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        let answer = body_of(verified_answer("zoom", &keys, &verified(), &HeaderMap::new(), body).expect("answered"));
        let expected =
            hex::encode(Algorithm::Sha256.mac(&Secret::new("secret-token"), [b"qgg8vlvZRS6UYooatFL8Aw".as_slice()]));
        assert_eq!(answer, format!(r#"{{"encryptedToken":"{expected}","plainToken":"qgg8vlvZRS6UYooatFL8Aw"}}"#));
    }

    #[test]
    fn discord_ping_gets_pong() {
        let answer = verified_answer("discord", &[], &verified(), &HeaderMap::new(), br#"{"type":1,"id":"x"}"#)
            .expect("answered");
        assert_eq!(body_of(answer), r#"{"type":1}"#);
        assert!(verified_answer("discord", &[], &verified(), &HeaderMap::new(), br#"{"type":2}"#).is_none());
    }

    #[test]
    fn dropbox_get_challenge() {
        let uri: Uri = "/hooks/dropbox?x=1&challenge=abc%2F123+4".parse().expect("uri");
        let response = unsigned_answer("dropbox", &Method::GET, &uri).expect("answered");
        assert_eq!(response.headers()[X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(body_of(response), "abc/123 4", "the query value, decoded");
        assert!(unsigned_answer("dropbox", &Method::POST, &uri).is_none());
        assert!(unsigned_answer("slack", &Method::GET, &uri).is_none());
    }
}
