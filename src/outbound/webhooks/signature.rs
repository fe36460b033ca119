//! Standard Webhooks signatures: `v1,` and the base64 of HMAC-SHA256 over
//! `{id}.{timestamp}.{body}`, keyed with the secret's decoded bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// The `webhook-signature` header's value for this message.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::webhooks::model::WebhookSecret;

    /// The test vector the Standard Webhooks specification publishes (its reference libraries
    /// test against it), so that any of its libraries verifies what this one signs.
    #[test]
    fn matches_the_standard_webhooks_test_vector() {
        let secret = WebhookSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        assert_eq!(
            sign(
                &secret.key().unwrap(),
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1_614_265_330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn any_change_to_the_message_changes_the_signature() {
        let key = b"0123456789abcdef0123456789abcdef";
        let base = sign(key, "evt_1", 100, b"{}");
        assert_ne!(base, sign(key, "evt_2", 100, b"{}"));
        assert_ne!(base, sign(key, "evt_1", 101, b"{}"));
        assert_ne!(base, sign(key, "evt_1", 100, b"{ }"));
        assert_ne!(base, sign(b"another key", "evt_1", 100, b"{}"));
    }
}
