//! `ollystack-node token`: adds tokens to a tokens file (printing each new
//! token once: only its hash is kept) and lists what a file holds.

use std::io::Write;
use std::path::Path;

use super::store::TokensFileError;
use super::tokens::{hash, token_from, Scope, TokenEntry, TokenFile, Tokens};

const HEADER: &str = "# OllyStack API and OTLP tokens: only SHA-256 hashes are kept here.\n\
# Add tokens with `ollystack-node token add`; delete an entry to revoke its token\n\
# (nodes read this file again within seconds of a change).\n\n";

fn read(path: &Path) -> Result<TokenFile, TokensFileError> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(TokensFileError::syntax(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
        Err(e) => Err(TokensFileError::io(path)(e)),
    }
}

/// Adds a token named `name` and returns it (the only time it is shown).
pub fn add(path: &Path, name: &str, scopes: &[Scope], tenant: Option<&str>) -> Result<String, TokensFileError> {
    let mut file = read(path)?;
    if file.tokens.iter().any(|t| t.name == name) {
        return Err(TokensFileError::Duplicate { path: path.to_owned(), name: name.to_owned() });
    }
    let mut random = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).map_err(|_| TokensFileError::NoRandomness)?;
    let token = token_from(random);
    let mut scopes = scopes.to_vec();
    scopes.sort();
    scopes.dedup();
    file.tokens.push(TokenEntry { name: name.to_owned(), scopes, tenant: tenant.map(str::to_owned), sha256: hex::encode(hash(&token)) });
    Tokens::from_file(&file).map_err(TokensFileError::NewEntry)?;
    let text = toml::to_string(&file).map_err(|e| TokensFileError::Encode(e.to_string()))?;
    write_private(path, &format!("{HEADER}{text}"))?;
    Ok(token)
}

/// One line per token: name, scopes, tenant.
pub fn list(path: &Path) -> Result<String, TokensFileError> {
    let file = read(path)?;
    let mut out = format!("{:<24} {:<20} {}\n", "NAME", "SCOPES", "TENANT");
    for t in &file.tokens {
        let scopes: Vec<&str> = t.scopes.iter().map(|s| s.as_str()).collect();
        out += &format!("{:<24} {:<20} {}\n", t.name, scopes.join(","), t.tenant.as_deref().unwrap_or("(any)"));
    }
    Ok(out)
}

/// Writes through a temporary file renamed into place, readable by its
/// owner only, so a node never reads half a file.
fn write_private(path: &Path, text: &str) -> Result<(), TokensFileError> {
    let tmp = path.with_extension("tmp");
    let err = TokensFileError::io(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(&tmp).map_err(err)?;
    f.write_all(text.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::store::read_tokens;

    #[test]
    fn added_tokens_work_and_only_their_hash_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.toml");
        let ingest = add(&path, "collector", &[Scope::Ingest], Some("acme")).expect("added");
        let read = add(&path, "grafana", &[Scope::Read, Scope::Read], None).expect("added");
        assert!(add(&path, "grafana", &[Scope::Read], None).is_err(), "names are unique");
        assert!(add(&path, "bad", &[Scope::Read], Some("a b")).is_err(), "tenants are checked");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains(&ingest) && !text.contains(&read), "{text}");
        let tokens = read_tokens(&path).expect("valid file");
        let caller = tokens.authenticate(Some(format!("Bearer {ingest}").as_bytes()), Scope::Ingest).expect("let in");
        assert_eq!(caller.tenant.map(|t| t.as_str().to_owned()).as_deref(), Some("acme"));
        assert!(tokens.authenticate(Some(format!("Bearer {read}").as_bytes()), Scope::Ingest).is_err());
        let listed = list(&path).expect("lists");
        assert!(listed.contains("collector") && listed.contains("acme") && listed.contains("(any)"), "{listed}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        }
    }
}
