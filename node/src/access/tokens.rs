//! Bearer tokens for the OTLP and API ports: who may call, for what, and
//! for which tenant. Pure: parsing the tokens file and checking an
//! `Authorization` header against it.
//!
//! The file keeps only SHA-256 hashes of the tokens (a token is 32 random
//! bytes, so a fast hash is enough: there is nothing to guess from it).
//! Callers send `Authorization: Bearer <token>`, as the OpenTelemetry
//! Collector's `bearertokenauth` extension and the OTel SDKs' header
//! settings do; on gRPC the same header is request metadata.
//!
//! ```toml
//! [[tokens]]
//! name = "collector-acme"      # shown in logs, never the token
//! scopes = ["ingest"]          # ingest, read, admin (admin implies both)
//! tenant = "acme"              # optional: bound to one tenant
//! sha256 = "9f86d0…"           # hex of SHA-256 of the token
//! ```

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::model::TenantId;

/// Prefix of the tokens `ollystack-node token add` makes (easy to spot in
/// a leaked file or a secret scanner).
pub const TOKEN_PREFIX: &str = "olly_";

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Send telemetry to the OTLP ports.
    Ingest,
    /// Read through the API (lookups, listings, RCA, `/metrics`).
    Read,
    /// Everything (ingest and read included).
    Admin,
}

impl Scope {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ingest" => Some(Self::Ingest),
            "read" => Some(Self::Read),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Admin => "admin",
        }
    }
}

/// One entry of the tokens file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    pub name: String,
    pub scopes: Vec<Scope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub sha256: String,
}

/// The tokens file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    #[serde(default)]
    pub tokens: Vec<TokenEntry>,
}

/// Who called, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (for logs).
    pub name: String,
    pub scopes: Vec<Scope>,
    /// The tenant the token is bound to: its caller reads and writes that
    /// tenant only, whatever a header or an attribute says.
    pub tenant: Option<TenantId>,
}

impl Caller {
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.iter().any(|s| *s == scope || *s == Scope::Admin)
    }
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No usable credentials: HTTP 401, gRPC UNAUTHENTICATED.
    #[error("{0}")]
    Unauthenticated(&'static str),
    /// A known token without the scope: HTTP 403, gRPC PERMISSION_DENIED.
    #[error("token {name:?} lacks scope {}", scope.as_str())]
    Forbidden { name: String, scope: Scope },
}

impl Denied {
    pub fn code(&self) -> crate::error::ErrorCode {
        match self {
            Self::Unauthenticated(_) => crate::error::ErrorCode::Unauthenticated,
            Self::Forbidden { .. } => crate::error::ErrorCode::PermissionDenied,
        }
    }
}

/// The tokens in force: hash → caller.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_hash: HashMap<[u8; 32], Caller>,
}

/// Why a tokens file is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("token {name:?}: {message}")]
pub struct BadEntry {
    pub name: String,
    pub message: String,
}

/// SHA-256 of a token.
pub fn hash(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A new token from 32 random bytes: the prefix, then 64 hex digits.
pub fn token_from(random: [u8; 32]) -> String {
    format!("{TOKEN_PREFIX}{}", hex::encode(random))
}

impl Tokens {
    /// Checks every entry; one bad entry makes the whole file unusable (a
    /// half-read file would lock out or let in the wrong callers).
    pub fn from_file(file: &TokenFile) -> Result<Self, BadEntry> {
        let mut by_hash = HashMap::new();
        for e in &file.tokens {
            let bad = |message: &str| BadEntry { name: e.name.clone(), message: message.to_owned() };
            if e.name.is_empty() {
                return Err(bad("has no name"));
            }
            if e.scopes.is_empty() {
                return Err(bad("has no scopes (ingest, read or admin)"));
            }
            if let Some(t) = &e.tenant {
                if !crate::correlate::is_tenant_name(t) {
                    return Err(bad("tenant must be 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'"));
                }
            }
            let digest: [u8; 32] = hex::decode(&e.sha256)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("sha256 must be 64 hex digits (the SHA-256 of the token)"))?;
            let caller = Caller { name: e.name.clone(), scopes: e.scopes.clone(), tenant: e.tenant.as_deref().map(TenantId::from_trusted) };
            if by_hash.insert(digest, caller).is_some() {
                return Err(bad("the same token is listed twice"));
            }
        }
        Ok(Self { by_hash })
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Checks an `Authorization` header value for `scope`.
    pub fn authenticate(&self, authorization: Option<&[u8]>, scope: Scope) -> Result<Caller, Denied> {
        let value = authorization.ok_or(Denied::Unauthenticated("send the header Authorization: Bearer <token>"))?;
        let value = std::str::from_utf8(value).map_err(|_| Denied::Unauthenticated("the Authorization header is not text"))?;
        let (scheme, token) =
            value.trim().split_once(' ').ok_or(Denied::Unauthenticated("the Authorization header must be: Bearer <token>"))?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(Denied::Unauthenticated("only Bearer tokens are accepted"));
        }
        let caller = self.by_hash.get(&hash(token.trim())).ok_or(Denied::Unauthenticated("unknown token"))?;
        if !caller.may(scope) {
            return Err(Denied::Forbidden { name: caller.name.clone(), scope });
        }
        Ok(caller.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, token: &str, scopes: &[Scope], tenant: Option<&str>) -> TokenEntry {
        TokenEntry { name: name.into(), scopes: scopes.to_vec(), tenant: tenant.map(Into::into), sha256: hex::encode(hash(token)) }
    }

    fn tokens() -> Tokens {
        let file = TokenFile {
            tokens: vec![
                entry("collector", "t-ingest", &[Scope::Ingest], Some("acme")),
                entry("grafana", "t-read", &[Scope::Read], None),
                entry("ops", "t-admin", &[Scope::Admin], None),
            ],
        };
        Tokens::from_file(&file).expect("valid")
    }

    #[test]
    fn a_bearer_token_with_its_scope_is_let_in() {
        let caller = tokens().authenticate(Some(b"Bearer t-ingest"), Scope::Ingest).expect("let in");
        assert_eq!((caller.name.as_str(), caller.tenant), ("collector", Some(TenantId::from_trusted("acme"))));
        assert!(tokens().authenticate(Some(b"bearer  t-read "), Scope::Read).is_ok(), "scheme is case-insensitive, spaces trimmed");
    }

    #[test]
    fn admin_implies_every_scope() {
        for scope in [Scope::Ingest, Scope::Read, Scope::Admin] {
            assert!(tokens().authenticate(Some(b"Bearer t-admin"), scope).is_ok());
        }
    }

    #[test]
    fn missing_unknown_and_misused_tokens_are_refused() {
        let t = tokens();
        assert!(matches!(t.authenticate(None, Scope::Read), Err(Denied::Unauthenticated(_))));
        assert!(matches!(t.authenticate(Some(b"Bearer nope"), Scope::Read), Err(Denied::Unauthenticated(_))));
        assert!(matches!(t.authenticate(Some(b"Basic dDpy"), Scope::Read), Err(Denied::Unauthenticated(_))));
        assert!(matches!(t.authenticate(Some(b"t-read"), Scope::Read), Err(Denied::Unauthenticated(_))));
        assert!(matches!(t.authenticate(Some(&[0xff, 0xfe]), Scope::Read), Err(Denied::Unauthenticated(_))));
        let forbidden = t.authenticate(Some(b"Bearer t-ingest"), Scope::Read).expect_err("ingest cannot read");
        assert_eq!(forbidden, Denied::Forbidden { name: "collector".into(), scope: Scope::Read });
        assert!(!forbidden.to_string().contains("t-ingest"), "the token never appears in an answer");
    }

    #[test]
    fn a_bad_entry_spoils_the_file() {
        let good = entry("a", "x", &[Scope::Read], None);
        for (bad, says) in [
            (TokenEntry { sha256: "zz".into(), ..good.clone() }, "64 hex digits"),
            (TokenEntry { scopes: vec![], ..good.clone() }, "no scopes"),
            (TokenEntry { tenant: Some("../etc".into()), ..good.clone() }, "tenant"),
            (TokenEntry { name: String::new(), ..good.clone() }, "no name"),
        ] {
            let err = Tokens::from_file(&TokenFile { tokens: vec![good.clone(), bad] }).expect_err("refused");
            assert!(err.to_string().contains(says), "{err}");
        }
        let twice = TokenFile { tokens: vec![good.clone(), TokenEntry { name: "b".into(), ..good }] };
        assert!(Tokens::from_file(&twice).is_err());
    }

    #[test]
    fn the_file_reads_as_documented() {
        let text = "[[tokens]]\nname = \"c\"\nscopes = [\"ingest\", \"read\"]\ntenant = \"acme\"\nsha256 = \"".to_owned()
            + &hex::encode(hash("tok"))
            + "\"\n";
        let file: TokenFile = toml::from_str(&text).expect("parses");
        let t = Tokens::from_file(&file).expect("valid");
        assert_eq!(t.authenticate(Some(b"Bearer tok"), Scope::Read).expect("in").scopes, [Scope::Ingest, Scope::Read]);
        assert!(toml::from_str::<TokenFile>("[[tokens]]\nname = \"c\"\nscopes = [\"root\"]\nsha256 = \"\"\n").is_err());
    }

    #[test]
    fn made_tokens_carry_the_prefix_and_64_hex_digits() {
        let t = token_from([7; 32]);
        assert!(t.starts_with(TOKEN_PREFIX) && t.len() == TOKEN_PREFIX.len() + 64);
    }
}
