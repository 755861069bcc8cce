//! `tailor keys create | list | revoke`: a site's API keys in its configuration file.
//!
//! A secret is `tlr_` and 32 random bytes (base64url): printed once by `create`, never stored. The
//! file keeps its SHA-256 only (`[[sites.keys]]` with `name`, `scope`, `sha256`; see
//! `tailor_core::access`). With `--config FILE`, `create` adds the key to the site's entry in FILE
//! and `revoke` removes it, keeping the rest of the file as written (comments, order); without it,
//! `create` prints the stanza to paste. A running Tailor reads its keys at start-up: restart it
//! (one service at a time) for a change to take effect.

use crate::cli::Keys;
use anyhow::{bail, Context};
use base64::Engine;
use std::path::Path;
use tailor_core::access::{digest_hex, Scope, SECRET_PREFIX};
use tailor_core::config::{Config, SiteConfig};
use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

/// Random bytes in a secret: 256 bits, beyond guessing.
const SECRET_BYTES: usize = 32;

/// A new secret.
pub fn new_secret() -> anyhow::Result<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!(
        "{SECRET_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Runs `tailor keys ...` on the configuration file `config` (if given), printing to stdout.
pub fn run(cmd: Keys, config: Option<&Path>) -> anyhow::Result<()> {
    match cmd {
        Keys::Create { site, scope, name } => {
            let scope = Scope::parse(&scope).with_context(|| {
                format!("--scope must be one of collect, serve, catalog, admin; got {scope:?}")
            })?;
            let secret = new_secret()?;
            let sha256 = digest_hex(&secret);
            let name = name.unwrap_or_else(|| format!("{scope}-{}", &sha256[..8]));
            // The secret alone on the first line, for scripts (`| head -1`).
            println!("{secret}");
            match config {
                Some(path) => {
                    edit(path, |doc| add_key(doc, &site, &name, scope, &sha256))?;
                    eprintln!(
                        "key {name:?} ({scope}) added to site {site:?} in {}; the secret above is shown once only. Restart Tailor to use it.",
                        path.display()
                    );
                }
                None => {
                    println!(
                        "\n# Paste under the [[sites]] entry with id = \"{site}\":\n[[sites.keys]]\nname = \"{name}\"\nscope = \"{scope}\"\nsha256 = \"{sha256}\""
                    );
                    eprintln!("the secret (first line) is shown once only; the configuration keeps its hash");
                }
            }
            Ok(())
        }
        Keys::List { site } => {
            let path = config.context("give the configuration file with --config")?;
            let c = Config::from_toml_file(path)?;
            let s = c
                .site(&site)
                .with_context(|| format!("site {site:?} is not in {}", path.display()))?;
            if s.keys.is_empty() {
                println!("site {site:?} has no keys: every scope is closed");
            }
            for k in &s.keys {
                println!(
                    "{:<24} {:<8} sha256:{}…",
                    k.name,
                    k.scope,
                    &k.sha256[..k.sha256.len().min(12)]
                );
            }
            Ok(())
        }
        Keys::Revoke { site, name } => {
            let path = config.context("give the configuration file with --config")?;
            edit(path, |doc| remove_key(doc, &site, &name))?;
            eprintln!(
                "key {name:?} removed from site {site:?} in {}; restart Tailor for it to stop working",
                path.display()
            );
            Ok(())
        }
    }
}

/// Reads `path`, applies `change`, checks the result is a valid configuration, writes it back.
fn edit(
    path: &Path,
    change: impl FnOnce(&mut DocumentMut) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .with_context(|| format!("{} is not TOML", path.display()))?;
    change(&mut doc)?;
    let out = doc.to_string();
    Config::from_toml(&out)
        .and_then(|c| c.validate())
        .with_context(|| format!("{} would no longer be valid", path.display()))?;
    std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))
}

/// The site's table in the file's `[[sites]]`; the built-in demo site is written out first when
/// the file does not list it (so that it keeps its built-in settings).
fn site_table<'d>(
    doc: &'d mut DocumentMut,
    site: &str,
    create_demo: bool,
) -> anyhow::Result<&'d mut Table> {
    let sites = doc
        .entry("sites")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .context("`sites` in the file is not a list of [[sites]] tables")?;
    let at = sites
        .iter()
        .position(|t| t.get("id").and_then(|v| v.as_str()) == Some(site));
    let at = match at {
        Some(at) => at,
        None if create_demo && site == "demo" => {
            let d = SiteConfig::demo();
            let list = |v: &[String]| value(v.iter().collect::<Array>());
            let mut t = Table::new();
            t["id"] = value(d.id.as_str());
            t["name"] = value(d.name.as_str());
            t["snowplow_app_ids"] = list(&d.snowplow_app_ids);
            t["segment_write_keys"] = list(&d.segment_write_keys);
            t["allowed_origins"] = list(&d.allowed_origins);
            sites.push(t);
            sites.len() - 1
        }
        None => bail!(
            "site {site:?} is not in the file: add a [[sites]] entry with id = \"{site}\" first"
        ),
    };
    Ok(sites.get_mut(at).expect("found above"))
}

fn add_key(
    doc: &mut DocumentMut,
    site: &str,
    name: &str,
    scope: Scope,
    sha256: &str,
) -> anyhow::Result<()> {
    let t = site_table(doc, site, true)?;
    let keys = t
        .entry("keys")
        .or_insert(Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .context("`keys` of the site is not a list of [[sites.keys]] tables")?;
    if keys
        .iter()
        .any(|k| k.get("name").and_then(|v| v.as_str()) == Some(name))
    {
        bail!("site {site:?} already has a key named {name:?}");
    }
    let mut k = Table::new();
    k["name"] = value(name);
    k["scope"] = value(scope.as_str());
    k["sha256"] = value(sha256);
    keys.push(k);
    Ok(())
}

fn remove_key(doc: &mut DocumentMut, site: &str, name: &str) -> anyhow::Result<()> {
    let t = site_table(doc, site, false)?;
    let keys = t
        .get_mut("keys")
        .and_then(|k| k.as_array_of_tables_mut())
        .with_context(|| format!("site {site:?} has no keys"))?;
    let before = keys.len();
    keys.retain(|k| k.get("name").and_then(|v| v.as_str()) != Some(name));
    if keys.len() == before {
        bail!("site {site:?} has no key named {name:?}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_long_random_and_prefixed() {
        let (a, b) = (new_secret().unwrap(), new_secret().unwrap());
        assert!(a.starts_with(SECRET_PREFIX));
        assert_eq!(a.len(), SECRET_PREFIX.len() + 43, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn keys_are_added_to_their_site_and_revoked_keeping_the_file() {
        let dir = tailor_infra::testkit::temp_dir("keys");
        let path = dir.join("tailor.toml");
        let text = "# my shops\n[[sites]]\nid = \"a\"\n\n[[sites]]\nid = \"b\" # the second\n";
        std::fs::write(&path, text).unwrap();
        let create = |site: &str, name: &str| {
            edit(&path, |d| {
                add_key(d, site, name, Scope::Admin, &digest_hex(name))
            })
            .map(|_| ())
        };
        create("a", "ops").unwrap();
        create("demo", "demo-ops").unwrap();
        assert!(create("a", "ops").is_err(), "a name is unique on its site");
        assert!(create("nowhere", "x").is_err());
        let c = Config::from_toml_file(&path).unwrap();
        assert_eq!(c.site("a").unwrap().keys[0].sha256, digest_hex("ops"));
        assert!(c.site("b").unwrap().keys.is_empty());
        let demo = c.site("demo").unwrap();
        assert_eq!(
            demo.allowed_origins,
            ["*"],
            "the demo site keeps its settings"
        );
        assert_eq!(demo.keys[0].name, "demo-ops");
        let written = std::fs::read_to_string(&path).unwrap();
        assert!(
            written.starts_with("# my shops\n") && written.contains("# the second"),
            "{written}"
        );

        edit(&path, |d| remove_key(d, "a", "ops")).unwrap();
        assert!(edit(&path, |d| remove_key(d, "a", "ops")).is_err());
        let c = Config::from_toml_file(&path).unwrap();
        assert!(c.site("a").unwrap().keys.is_empty());
    }
}
