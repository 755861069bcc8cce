//! Offer tokens: what the recommender signs into each offer it answers, and the processor verifies on
//! the impression, click and purchase events the tag sends back.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::Attribution;

/// What an offer's token carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfferToken {
    pub site: String,
    pub campaign: String,
    pub variant: String,
    pub subject: String,
    pub issued_ms: i64,
    /// The campaign's attribution windows, so the processor attributes purchases without reading
    /// campaign definitions.
    pub windows: Attribution,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(secret: &str, payload: &[u8]) -> HmacSha256 {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(payload);
    m
}

/// Signs an offer: `base64url(payload).base64url(HMAC-SHA256(secret, payload))`.
pub fn token(secret: &str, t: &OfferToken) -> String {
    let payload = serde_json::json!([
        t.site,
        t.campaign,
        t.variant,
        t.subject,
        t.issued_ms,
        t.windows.click_days,
        t.windows.view_days
    ])
    .to_string();
    let sig = mac(secret, payload.as_bytes()).finalize().into_bytes();
    format!("{}.{}", B64.encode(payload), B64.encode(sig))
}

/// The token's fields if its signature holds under `secret`; `None` for anything forged or damaged.
pub fn verify(secret: &str, token: &str) -> Option<OfferToken> {
    let (p, s) = token.split_once('.')?;
    let payload = B64.decode(p).ok()?;
    let sig = B64.decode(s).ok()?;
    mac(secret, &payload).verify_slice(&sig).ok()?;
    // Tokens issued before attribution windows existed have five fields: the default windows.
    type Old = (String, String, String, String, i64);
    type New = (String, String, String, String, i64, u32, u32);
    let (site, campaign, variant, subject, issued_ms, windows) =
        match serde_json::from_slice::<New>(&payload) {
            Ok((s, c, v, subj, t, click_days, view_days)) => (
                s,
                c,
                v,
                subj,
                t,
                Attribution {
                    click_days,
                    view_days,
                },
            ),
            Err(_) => {
                let (s, c, v, subj, t): Old = serde_json::from_slice(&payload).ok()?;
                (s, c, v, subj, t, Attribution::default())
            }
        };
    Some(OfferToken {
        site,
        campaign,
        variant,
        subject,
        issued_ms,
        windows,
    })
}
