//! Who may call what: per-site API keys, their scopes, and the one check of a presented secret.
//!
//! A site's keys are configured as `[[sites.keys]]` with a `name`, a [`Scope`] and the hex SHA-256
//! of the secret; the secret itself is never stored, so a leaked configuration file grants nothing.
//! A request presents the secret as `Authorization: Bearer <secret>`; [`Keyring::find`] hashes it
//! once and compares the digest with **every** configured digest in constant time (no early exit,
//! no comparison that stops at the first differing byte), so the answer's timing says nothing about
//! which key, or how much of one, was close.
//!
//! A site is *open* ([`crate::config::SiteConfig::open`]) only when it is the built-in demo site of
//! a deployment without a configuration file: then no key is needed for it. Every site a file
//! defines is closed: each scope needs a key of that site, and a site with no key for a scope is
//! unreachable in that scope.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What a key may do. Each route names the scope it needs (or is public).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Server-side collection (`POST /v1/events`, Snowplow `tp2` without a browser `Origin`).
    Collect,
    /// Member profiles (`GET /v1/profiles/...`) and recommendations that name a member.
    Serve,
    /// The product catalog (`/v1/catalog/*`).
    Catalog,
    /// Every `/admin/*` route, and the CLI commands that call them.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 4] = [Scope::Collect, Scope::Serve, Scope::Catalog, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Collect => "collect",
            Scope::Serve => "serve",
            Scope::Catalog => "catalog",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One configured key (`[[sites.keys]]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// A name to list and revoke it by, unique within its site.
    pub name: String,
    pub scope: Scope,
    /// The hex SHA-256 of the secret (64 hex digits).
    pub sha256: String,
}

/// Prefix of every secret `tailor keys create` makes, so a leaked one is recognisable in a scan.
pub const SECRET_PREFIX: &str = "tlr_";

/// The SHA-256 of a secret.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// [`digest`] as lowercase hex, the form the configuration holds.
pub fn digest_hex(secret: &str) -> String {
    digest(secret).iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses 64 hex digits (either case) into a digest.
pub fn parse_digest(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A key a secret matched: its site, name and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub site: String,
    pub name: String,
    pub scope: Scope,
}

/// Every configured key of every site, ready to check secrets against.
#[derive(Debug, Clone, Default)]
pub struct Keyring {
    keys: Vec<([u8; 32], Grant)>,
}

impl Keyring {
    /// The keys of a validated configuration (an unparsable digest, which validation refuses, is
    /// left out: it could match nothing anyway).
    pub fn new(config: &crate::config::Config) -> Keyring {
        let keys = config
            .sites
            .iter()
            .flat_map(|s| {
                s.keys.iter().filter_map(|k| {
                    Some((
                        parse_digest(&k.sha256)?,
                        Grant {
                            site: s.id.clone(),
                            name: k.name.clone(),
                            scope: k.scope,
                        },
                    ))
                })
            })
            .collect();
        Keyring { keys }
    }

    /// The key whose digest is the secret's, compared in constant time against every key.
    pub fn find(&self, secret: &str) -> Option<&Grant> {
        let presented = digest(secret);
        let mut found = None;
        for (d, grant) in &self.keys {
            if bool::from(d.ct_eq(&presented)) {
                found = Some(grant);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn digests_round_trip_through_hex() {
        let hex = digest_hex("tlr_secret");
        assert_eq!(hex.len(), 64);
        assert_eq!(parse_digest(&hex), Some(digest("tlr_secret")));
        assert_eq!(
            parse_digest(&hex.to_uppercase()),
            Some(digest("tlr_secret"))
        );
        assert_eq!(parse_digest(&hex[1..]), None);
        assert_eq!(parse_digest(&format!("{}zz", &hex[2..])), None);
        // The SHA-256 of "abc", from FIPS 180-2.
        assert_eq!(
            digest_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_secret_finds_its_own_key_only() {
        let toml = format!(
            "[[sites]]\nid = \"a\"\n[[sites.keys]]\nname = \"ops\"\nscope = \"admin\"\nsha256 = \"{}\"\n\
             [[sites]]\nid = \"b\"\n[[sites.keys]]\nname = \"shop\"\nscope = \"serve\"\nsha256 = \"{}\"\n",
            digest_hex("tlr_a"),
            digest_hex("tlr_b"),
        );
        let c = Config::from_toml(&toml).unwrap();
        c.validate().unwrap();
        let ring = Keyring::new(&c);
        let a = ring.find("tlr_a").unwrap();
        assert_eq!(
            (a.site.as_str(), a.name.as_str(), a.scope),
            ("a", "ops", Scope::Admin)
        );
        assert_eq!(ring.find("tlr_b").unwrap().site, "b");
        assert_eq!(ring.find("tlr_c"), None);
        assert_eq!(ring.find(""), None);
    }
}
