//! Who may call what on the cluster port. With mutual TLS ([`super::tls`])
//! a caller is known by the name in its certificate, and the calls that
//! change or read the cluster's state (Raft, proposals, forwarded data,
//! routed queries, hand-overs) are served only to current members: a
//! certificate the CA signed is not enough once its node left. Joining and
//! leaving need the join token as well. Without TLS (`--insecure`) every
//! caller is served: only for a network where every host is trusted.

use std::sync::Arc;

use super::transport::Peer;

/// How a node's cluster port authorizes its callers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Mutual TLS: callers are known by their certificate's name.
    Tls,
    /// No TLS: every caller is served.
    Insecure,
}

/// The name a request's caller proved with its certificate (none without TLS).
pub fn caller<T>(request: &tonic::Request<T>) -> Option<Arc<str>> {
    request.extensions().get::<Peer>().and_then(|p| p.identity.clone())
}

/// Whether `caller` may make a members-only call. `members` holds the
/// identities of the current members; `None` while this node knows no
/// membership yet (it is joining, and takes its first Raft entries from
/// whoever the cluster is). Pure.
pub fn check_member(trust: Trust, caller: Option<&str>, members: Option<&[&str]>) -> Result<(), String> {
    if trust == Trust::Insecure {
        return Ok(());
    }
    let Some(caller) = caller else {
        return Err("the caller's certificate names no DNS name; members are known by it".into());
    };
    match members {
        None => Ok(()),
        Some(members) if members.contains(&caller) => Ok(()),
        Some(_) => Err(format!("{caller:?} is not a member of this cluster")),
    }
}

/// [`check_member`] for a request, answered as `PERMISSION_DENIED`.
pub fn require_member<T>(trust: Trust, request: &tonic::Request<T>, members: Option<&[&str]>) -> Result<(), tonic::Status> {
    let caller = caller(request);
    check_member(trust, caller.as_deref(), members).map_err(tonic::Status::permission_denied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insecure_serves_everyone() {
        assert!(check_member(Trust::Insecure, None, Some(&["a"])).is_ok());
    }

    #[test]
    fn tls_serves_members_only() {
        assert!(check_member(Trust::Tls, Some("a"), Some(&["a", "b"])).is_ok());
        assert!(check_member(Trust::Tls, Some("c"), Some(&["a", "b"])).is_err());
        assert!(check_member(Trust::Tls, None, Some(&["a"])).is_err());
        // An empty identity never matches a member recorded without one.
        assert!(check_member(Trust::Tls, Some(""), Some(&["a"])).is_err());
    }

    #[test]
    fn a_joining_node_takes_any_certified_caller() {
        assert!(check_member(Trust::Tls, Some("leader"), None).is_ok());
        assert!(check_member(Trust::Tls, None, None).is_err());
    }
}
