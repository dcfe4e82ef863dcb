use std::time::Duration;

use super::*;

#[test]
fn offered_rate_is_a_multiple_or_an_absolute_rate() {
    assert_eq!("2x".parse::<OfferedRate>(), Ok(OfferedRate::TimesCapacity(2.0)));
    assert_eq!("150000".parse::<OfferedRate>(), Ok(OfferedRate::SpansPerSec(150_000.0)));
    assert!("0x".parse::<OfferedRate>().is_err());
    assert!("fast".parse::<OfferedRate>().is_err());
    assert_eq!(OfferedRate::TimesCapacity(2.0).spans_per_sec(Some(1000.0)), Some(2000.0));
    assert_eq!(OfferedRate::TimesCapacity(2.0).spans_per_sec(None), None);
    assert_eq!(OfferedRate::SpansPerSec(5.0).spans_per_sec(None), Some(5.0));
}

#[test]
fn durations_take_units() {
    assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
    assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
    assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
    assert!(parse_duration("-1s").is_err());
    assert!(parse_duration("soon").is_err());
}

#[test]
fn requests_visit_every_id_round_robin() {
    let layout = Layout::new(25, 10, 100).expect("valid");
    assert_eq!(layout.spans_per_id, 10);
    let mut visits = [0u32; 25];
    // Five requests carry 50 slots: every ID twice.
    for seq in 1..=5 {
        for slot in 0..10 {
            let id = layout.id_of(seq, slot);
            visits[id as usize] += 1;
            assert_eq!(layout.slot_of(seq, id), Some(slot), "seq {seq} slot {slot}");
        }
    }
    assert!(visits.iter().all(|&v| v == 2), "{visits:?}");
    // An ID the request does not carry has no slot and no spans.
    let absent = layout.id_of(1, 10);
    assert_eq!(layout.slot_of(1, absent), None);
    assert_eq!(layout.span_ids(1, absent).count(), 0);
}

#[test]
fn span_ids_name_their_request_and_are_distinct() {
    let layout = Layout::new(1000, 10, 100).expect("valid");
    let mut all = std::collections::HashSet::new();
    for seq in 1..=3 {
        for slot in 0..10 {
            let id = layout.id_of(seq, slot);
            let spans: Vec<u64> = layout.span_ids(seq, id).collect();
            assert_eq!(spans.len(), 10);
            assert!(spans.iter().all(|s| s >> 16 == seq && *s != 0));
            all.extend(spans);
        }
    }
    assert_eq!(all.len(), 300);
}

#[test]
fn a_layout_refuses_what_span_ids_cannot_hold() {
    assert!(Layout::new(5, 10, 100).is_err(), "fewer IDs than slots");
    assert!(Layout::new(100, 10, 5).is_err(), "fewer spans than IDs");
    assert!(Layout::new(100, 10, 70_000).is_err(), "span index beyond 16 bits");
}

#[test]
fn the_schedule_keeps_its_rate_whatever_the_caller_does() {
    let mut schedule = Schedule::new(100.0);
    assert_eq!(schedule.due(Duration::from_millis(5)), 0);
    assert_eq!(schedule.due(Duration::from_millis(10)), 1);
    assert_eq!(schedule.due(Duration::from_millis(10)), 0, "nothing twice");
    // A caller that stalled for a second gets the whole backlog.
    assert_eq!(schedule.due(Duration::from_millis(1010)), 100);
    assert_eq!(schedule.due(Duration::from_secs(2)), 99);
}

fn policy() -> RetryPolicy {
    RetryPolicy { enabled: true, max_attempts: 3, initial_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(4) }
}

#[test]
fn retries_honour_retry_after_capped_and_stop_after_max_attempts() {
    let p = policy();
    assert_eq!(p.next(Answer::TooManyRequests, 1, Some(Duration::from_secs(2))), Next::RetryAfter(Duration::from_secs(2)));
    assert_eq!(p.next(Answer::Unavailable, 1, Some(Duration::from_secs(60))), Next::RetryAfter(Duration::from_secs(4)), "capped");
    assert_eq!(p.next(Answer::Transport, 1, None), Next::RetryAfter(Duration::from_millis(500)));
    assert_eq!(p.next(Answer::Transport, 2, None), Next::RetryAfter(Duration::from_secs(1)), "backoff doubles");
    assert_eq!(p.next(Answer::TooManyRequests, 3, None), Next::GiveUp, "bounded attempts");
    assert_eq!(p.next(Answer::Other(400), 1, None), Next::GiveUp);
    assert_eq!(p.next(Answer::Accepted, 1, None), Next::Done);
    assert_eq!(p.next(Answer::Partial(3), 2, None), Next::Done);
    let off = RetryPolicy { enabled: false, ..p };
    assert_eq!(off.next(Answer::TooManyRequests, 1, Some(Duration::from_secs(1))), Next::GiveUp, "shed when retries are off");
}

#[test]
fn answers_classify_statuses() {
    assert_eq!(Answer::from_status(200, 0), Answer::Accepted);
    assert_eq!(Answer::from_status(200, 4), Answer::Partial(4));
    assert_eq!(Answer::from_status(429, 0), Answer::TooManyRequests);
    assert_eq!(Answer::from_status(503, 0), Answer::Unavailable);
    assert_eq!(Answer::from_status(500, 0), Answer::Other(500));
}
