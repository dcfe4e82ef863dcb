use super::*;

const ATTR: &str = "user.id";

fn state(limit: u64) -> LimiterState {
    LimiterState::new(LimiterConfig::new(1000, 4, [(ATTR.to_owned(), limit)]).expect("valid config"))
}

fn lease(node: u64, window: u64, lease: Option<u64>, want: u64) -> Command {
    Command::Lease { node: NodeId(node), attribute: ATTR.to_owned(), window: Window(window), lease: lease.map(LeaseId), want }
}

fn leased(lease: u64, granted: u64, free: u64) -> Response {
    Response::Leased { lease: LeaseId(lease), granted, free: Some(free) }
}

fn report(node: u64, window: u64, lease: u64, consumed: u64, values: &[&str]) -> Command {
    let values = values.iter().map(|v| (*v).to_owned()).collect();
    Command::Report { node: NodeId(node), attribute: ATTR.to_owned(), window: Window(window), lease: LeaseId(lease), consumed, values }
}

#[test]
fn grants_never_exceed_the_limit() {
    let mut state = state(10);
    assert_eq!(state.apply(&lease(1, 5, None, 4)), leased(0, 4, 6));
    assert_eq!(state.apply(&lease(2, 5, None, 4)), leased(1, 4, 2));
    // Only 2 units are left.
    assert_eq!(state.apply(&lease(1, 5, Some(0), 4)), leased(0, 6, 0));
    assert_eq!(state.apply(&lease(3, 5, None, 4)), Response::Exhausted);
    assert_eq!(state.usage(ATTR, Window(5)), Some(Usage { limit: 10, admitted: 0, outstanding: 10 }));
    // Another window has its own quota.
    assert_eq!(state.apply(&lease(3, 6, None, 4)), leased(2, 4, 6));
}

#[test]
fn reports_record_values_and_are_idempotent() {
    let mut state = state(10);
    state.apply(&lease(1, 5, None, 4));
    assert_eq!(state.apply(&report(1, 5, 0, 2, &["a", "b"])), Response::Reported { lease: LeaseId(0), consumed: 2 });
    // Retried, and an older report arriving late: nothing counted twice.
    assert_eq!(state.apply(&report(1, 5, 0, 2, &["a", "b"])), Response::Reported { lease: LeaseId(0), consumed: 2 });
    assert_eq!(state.apply(&report(1, 5, 0, 1, &["a"])), Response::Reported { lease: LeaseId(0), consumed: 2 });
    assert!(state.is_admitted(ATTR, Window(5), "a") && state.is_admitted(ATTR, Window(5), "b"));
    assert_eq!(state.usage(ATTR, Window(5)), Some(Usage { limit: 10, admitted: 2, outstanding: 2 }));
    // A value two nodes admitted independently is admitted once; its second
    // unit is spent.
    state.apply(&lease(2, 5, None, 4));
    state.apply(&report(2, 5, 1, 1, &["a"]));
    assert_eq!(state.usage(ATTR, Window(5)), Some(Usage { limit: 10, admitted: 2, outstanding: 5 }));
}

#[test]
fn dishonest_reports_are_refused() {
    let mut state = state(3);
    state.apply(&lease(1, 5, None, 2));
    assert_eq!(state.apply(&report(1, 5, 0, 3, &["a", "b", "c"])), Response::Refused(Refusal::OverLimit));
    assert_eq!(state.apply(&report(1, 5, 0, 1, &["a", "b"])), Response::Refused(Refusal::OverLimit));
    assert_eq!(state.apply(&report(2, 5, 0, 1, &["a"])), Response::Refused(Refusal::NotLeaseHolder));
    assert_eq!(state.apply(&report(1, 5, 9, 1, &["a"])), Response::Refused(Refusal::UnknownLease));
    assert_eq!(state.apply(&lease(2, 5, Some(0), 1)), Response::Refused(Refusal::NotLeaseHolder));
    assert_eq!(state.apply(&lease(1, 5, Some(9), 1)), Response::Refused(Refusal::UnknownLease));
    assert_eq!(state.apply(&lease(1, 5, None, 0)), Response::Refused(Refusal::EmptyRequest));
    let other = Command::Lease { node: NodeId(1), attribute: "route".to_owned(), window: Window(5), lease: None, want: 1 };
    assert_eq!(state.apply(&other), Response::Refused(Refusal::UnknownAttribute));
    assert_eq!(state.usage(ATTR, Window(5)), Some(Usage { limit: 3, admitted: 0, outstanding: 2 }));
}

#[test]
fn expired_windows_stay_closed() {
    let mut state = state(10);
    state.apply(&lease(1, 5, None, 4));
    state.apply(&lease(1, 6, None, 4));
    assert_eq!(state.apply(&Command::Expire { before_window: Window(6) }), Response::Expired { windows_removed: 1 });
    assert_eq!(state.usage(ATTR, Window(5)), None);
    // No fresh quota for a closed window, and its reports are dropped.
    assert_eq!(state.apply(&lease(2, 5, None, 4)), Response::Refused(Refusal::WindowClosed));
    assert_eq!(state.apply(&report(1, 5, 0, 1, &["a"])), Response::Refused(Refusal::WindowClosed));
    // Expiry never moves back.
    assert_eq!(state.apply(&Command::Expire { before_window: Window(2) }), Response::Expired { windows_removed: 0 });
    assert_eq!(state.apply(&lease(2, 5, None, 4)), Response::Refused(Refusal::WindowClosed));
    assert!(state.usage(ATTR, Window(6)).is_some());
}

#[test]
fn open_windows_are_bounded() {
    let mut state = state(10);
    for window in 0..MAX_OPEN_WINDOWS as u64 {
        assert!(matches!(state.apply(&lease(1, window, None, 1)), Response::Leased { .. }));
    }
    assert_eq!(state.apply(&lease(1, 99, None, 1)), Response::Refused(Refusal::TooManyWindows));
    state.apply(&Command::Expire { before_window: Window(1) });
    assert!(matches!(state.apply(&lease(1, 99, None, 1)), Response::Leased { .. }));
    assert_eq!(state.check_invariants(), Ok(()));
}

/// Two attributes, several windows, leases with and without reports, an
/// expiry: every map and field of the state is non-empty or non-default.
fn busy_state() -> LimiterState {
    let config = LimiterConfig::new(1000, 4, [(ATTR.to_owned(), 10), ("route".to_owned(), 3)]).expect("valid config");
    let mut state = LimiterState::new(config);
    for window in [4, 5, 6] {
        state.apply(&lease(1, window, None, 4));
        state.apply(&lease(2, window, None, 2));
    }
    state.apply(&report(1, 5, 2, 2, &["a", "b"]));
    state.apply(&report(2, 5, 3, 1, &["c"]));
    state.apply(&Command::Expire { before_window: Window(5) });
    let route = Command::Lease { node: NodeId(3), attribute: "route".to_owned(), window: Window(6), lease: None, want: 9 };
    assert_eq!(state.apply(&route), leased(6, 3, 0));
    state
}

#[test]
fn state_round_trips_through_json() {
    let state = busy_state();
    let json = serde_json::to_string(&state).expect("serializes");
    let back: LimiterState = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(back, state);
    assert_eq!(back.check_invariants(), Ok(()));
    assert_eq!(back.usage(ATTR, Window(5)), Some(Usage { limit: 10, admitted: 3, outstanding: 3 }));
    assert!(back.is_admitted(ATTR, Window(5), "c"));
}

#[test]
fn deserializing_refuses_a_state_past_its_limit() {
    let mut json: serde_json::Value = serde_json::to_value(busy_state()).expect("serializes");
    // Grant lease 6 ("route", limit 3) one unit more than the limit.
    let windows = json["windows"].as_array_mut().expect("windows are a list of pairs");
    let route = windows.iter_mut().find(|pair| pair[0][0] == "route").expect("the route window");
    route[1]["leases"][0][1]["granted"] = 4.into();
    let error = serde_json::from_value::<LimiterState>(json).expect_err("over the limit");
    assert!(error.to_string().contains("exceed the limit"), "{error}");
}

#[test]
fn deserializing_refuses_a_duplicate_key_and_a_bad_config() {
    let mut json: serde_json::Value = serde_json::to_value(busy_state()).expect("serializes");
    let windows = json["windows"].as_array_mut().expect("windows are a list of pairs");
    windows.push(windows[0].clone());
    assert!(serde_json::from_value::<LimiterState>(json).is_err());
    let config = r#"{"window_ms": 0, "lease_units": 4, "limits": {"user.id": 10}}"#;
    let error = serde_json::from_str::<LimiterConfig>(config).expect_err("window_ms 0");
    assert!(error.to_string().contains("window_ms = 0"), "{error}");
}

#[test]
fn commands_and_responses_round_trip_through_json() {
    let commands = [lease(1, 5, Some(2), 4), report(1, 5, 2, 2, &["a"]), Command::Expire { before_window: Window(3) }];
    for command in commands {
        let json = serde_json::to_string(&command).expect("serializes");
        assert_eq!(serde_json::from_str::<Command>(&json).expect("deserializes"), command);
    }
    let responses = [
        leased(1, 4, 6),
        Response::Leased { lease: LeaseId(1), granted: 4, free: None },
        Response::Exhausted,
        Response::Refused(Refusal::OverLimit),
    ];
    for response in responses {
        let json = serde_json::to_string(&response).expect("serializes");
        assert_eq!(serde_json::from_str::<Response>(&json).expect("deserializes"), response);
    }
}

/// A lease answer from a version before adaptive leases (no `free`) still
/// reads: the node then sizes its next request from the limit.
#[test]
fn a_lease_answer_without_free_units_reads() {
    let response: Response = serde_json::from_str(r#"{"Leased":{"lease":1,"granted":4}}"#).expect("deserializes");
    assert_eq!(response, Response::Leased { lease: LeaseId(1), granted: 4, free: None });
    let json = serde_json::to_string(&leased(1, 4, 6)).expect("serializes");
    assert_eq!(json, r#"{"Leased":{"lease":1,"granted":4,"free":6}}"#);
}
