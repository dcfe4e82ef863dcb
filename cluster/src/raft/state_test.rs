use super::*;
use crate::admission::{LeaseId, Window};
use crate::NodeId;

const ATTR: &str = "user.id";

fn members(ids_weights: &[(u64, u32)]) -> Vec<Member> {
    ids_weights.iter().map(|&(id, weight)| Member { id: NodeId(id), weight }).collect()
}

fn set_ring(ids_weights: &[(u64, u32)]) -> ClusterRequest {
    ClusterRequest::SetRing { members: members(ids_weights) }
}

fn limits(limit: u64) -> LimiterConfig {
    LimiterConfig::new(1000, 4, [(ATTR.to_owned(), limit)]).expect("valid config")
}

fn lease(node: u64, want: u64) -> Command {
    Command::Lease { node: NodeId(node), attribute: ATTR.to_owned(), window: Window(5), lease: None, want }
}

#[test]
fn the_ring_epoch_bumps_only_on_a_real_change() {
    let mut state = ClusterState::default();
    assert_eq!(state.apply(&set_ring(&[(1, 1)])), ClusterResponse::Ring { epoch: 1 });
    // The same request again, and the same members in another order.
    assert_eq!(state.apply(&set_ring(&[(1, 1)])), ClusterResponse::Ring { epoch: 1 });
    assert_eq!(state.apply(&set_ring(&[(2, 1), (1, 1)])), ClusterResponse::Ring { epoch: 2 });
    assert_eq!(state.apply(&set_ring(&[(1, 1), (2, 1)])), ClusterResponse::Ring { epoch: 2 });
    // A weight change is a change.
    assert_eq!(state.apply(&set_ring(&[(1, 1), (2, 3)])), ClusterResponse::Ring { epoch: 3 });
    let ring = state.ring().expect("a ring");
    assert_eq!(ring.epoch(), 3);
    assert_eq!(ring.members().collect::<Vec<_>>(), members(&[(1, 1), (2, 3)]));
}

#[test]
fn bad_rings_are_refused_and_change_nothing() {
    let mut state = ClusterState::default();
    assert!(matches!(state.apply(&set_ring(&[])), ClusterResponse::Refused(_)));
    assert_eq!(state.ring(), None);
    state.apply(&set_ring(&[(1, 1)]));
    for bad in [set_ring(&[]), set_ring(&[(1, 1), (1, 1)]), set_ring(&[(1, 0)]), set_ring(&[(2, 99)])] {
        assert!(matches!(state.apply(&bad), ClusterResponse::Refused(_)), "{bad:?}");
    }
    assert_eq!(state.ring().map(|ring| ring.epoch()), Some(1));
}

#[test]
fn limits_are_set_once() {
    let mut state = ClusterState::default();
    assert_eq!(state.limits(), None);
    assert_eq!(state.apply(&ClusterRequest::SetLimits { config: limits(10) }), ClusterResponse::Limits { accepted: true });
    assert_eq!(state.apply(&ClusterRequest::SetLimits { config: limits(10) }), ClusterResponse::Limits { accepted: true });
    assert_eq!(state.apply(&ClusterRequest::SetLimits { config: limits(20) }), ClusterResponse::Limits { accepted: false });
    assert_eq!(state.limits(), Some(&limits(10)));
}

#[test]
fn limiter_commands_route_to_the_limiter() {
    let mut state = ClusterState::default();
    let request = ClusterRequest::Limiter(lease(1, 4));
    let response = state.apply(&request);
    assert!(matches!(response, ClusterResponse::Refused(_)), "no limits yet: {response:?}");
    assert_eq!(learnable(&request, &response), None);

    state.apply(&ClusterRequest::SetLimits { config: limits(6) });
    let response = state.apply(&request);
    assert_eq!(response, ClusterResponse::Limiter(Response::Leased { lease: LeaseId(0), granted: 4, free: Some(2) }));
    assert_eq!(learnable(&request, &response), Some(&lease(1, 4)));
    assert_eq!(
        state.apply(&ClusterRequest::Limiter(lease(2, 4))),
        ClusterResponse::Limiter(Response::Leased { lease: LeaseId(1), granted: 2, free: Some(0) })
    );
    assert_eq!(state.limiter().and_then(|l| l.usage(ATTR, Window(5))).map(|u| u.outstanding), Some(6));
    assert_eq!(state.check_invariants(), Ok(()));
}

#[test]
fn refused_limiter_commands_are_not_learnable() {
    let mut state = ClusterState::default();
    state.apply(&ClusterRequest::SetLimits { config: limits(6) });
    let report = Command::Report {
        node: NodeId(1),
        attribute: ATTR.to_owned(),
        window: Window(5),
        lease: LeaseId(7),
        consumed: 1,
        values: vec!["a".to_owned()],
    };
    let request = ClusterRequest::Limiter(report);
    let response = state.apply(&request);
    assert!(matches!(response, ClusterResponse::Limiter(Response::Refused(_))), "{response:?}");
    assert_eq!(learnable(&request, &response), None);
    assert_eq!(learnable(&set_ring(&[(1, 1)]), &ClusterResponse::Ring { epoch: 1 }), None);
}

#[test]
fn state_round_trips_through_json() {
    let mut state = ClusterState::default();
    let json = serde_json::to_string(&state).expect("serializes");
    assert_eq!(serde_json::from_str::<ClusterState>(&json).expect("deserializes"), state);

    state.apply(&set_ring(&[(1, 1), (2, 2)]));
    state.apply(&set_ring(&[(1, 1), (2, 2), (3, 1)]));
    state.apply(&ClusterRequest::SetLimits { config: limits(6) });
    state.apply(&ClusterRequest::Limiter(lease(1, 4)));
    let json = serde_json::to_string(&state).expect("serializes");
    let back: ClusterState = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, state);
    assert_eq!(back.ring().map(|ring| ring.epoch()), Some(2));
    assert_eq!(back.check_invariants(), Ok(()));
}

#[test]
fn deserializing_refuses_an_invalid_ring() {
    let json = r#"{"ring": {"epoch": 3, "members": [{"id": 1, "weight": 0}]}, "limiter": null}"#;
    assert!(serde_json::from_str::<ClusterState>(json).is_err());
}

#[test]
fn ring_epochs_step_by_one_or_not_at_all() {
    let mut state = ClusterState::default();
    assert_eq!(epoch_step(0, &state), Ok(()));
    state.apply(&set_ring(&[(1, 1)]));
    assert_eq!(epoch_step(0, &state), Ok(()));
    state.apply(&set_ring(&[(1, 1)]));
    assert_eq!(epoch_step(1, &state), Ok(()), "the same members again: the same epoch");
    state.apply(&set_ring(&[(1, 1), (2, 1)]));
    assert_eq!(state.ring().map(|r| r.epoch()), Some(2));
    assert!(epoch_step(0, &state).is_err(), "two steps at once");
    assert!(epoch_step(3, &state).is_err(), "backwards");
}
