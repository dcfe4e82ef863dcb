use proptest::prelude::*;

use super::*;

/// The start of a refill interval.
const T0_MS: u64 = 1_700_000_000_000;

fn admit_n(sizer: &mut LeaseSizer, n: u64, now_ms: u64) {
    for _ in 0..n {
        sizer.record_new(now_ms);
    }
}

#[test]
fn starts_at_the_minimum() {
    assert_eq!(LeaseSizer::new(1).request(T0_MS), 1);
    assert_eq!(LeaseSizer::new(64).request(T0_MS), 64);
    // A minimum of 0 would ask for nothing: it is 1.
    assert_eq!(LeaseSizer::new(0).request(T0_MS), 1);
}

#[test]
fn asks_for_one_interval_at_the_recent_rate() {
    let mut sizer = LeaseSizer::new(1);
    admit_n(&mut sizer, 300, T0_MS);
    // The current interval already saw 300.
    assert_eq!(sizer.request(T0_MS + 10), 300);
    // The next interval: the full previous one counts until this one passes it.
    admit_n(&mut sizer, 50, T0_MS + LEASE_REFILL_MS);
    assert_eq!(sizer.request(T0_MS + LEASE_REFILL_MS + 1), 300);
    admit_n(&mut sizer, 350, T0_MS + LEASE_REFILL_MS + 2);
    assert_eq!(sizer.request(T0_MS + LEASE_REFILL_MS + 3), 400);
}

#[test]
fn shrinks_to_the_minimum_when_idle() {
    let mut sizer = LeaseSizer::new(2);
    admit_n(&mut sizer, 1000, T0_MS);
    assert_eq!(sizer.request(T0_MS), 1000);
    // One quiet interval: the previous one still counts.
    assert_eq!(sizer.units(T0_MS + LEASE_REFILL_MS), 1000);
    // Two: nothing recent.
    assert_eq!(sizer.units(T0_MS + 2 * LEASE_REFILL_MS), 2);
    // A long gap counts as quiet too (not as the interval before).
    let mut sizer = LeaseSizer::new(1);
    admit_n(&mut sizer, 1000, T0_MS);
    assert_eq!(sizer.units(T0_MS + 60_000), 1);
}

#[test]
fn doubles_when_the_lease_runs_dry() {
    let mut sizer = LeaseSizer::new(1);
    let mut asked = vec![sizer.request(T0_MS)];
    // Each lease is spent before its refill lands: the next is twice as big.
    for _ in 0..6 {
        admit_n(&mut sizer, *asked.last().expect("asked"), T0_MS);
        sizer.record_starved();
        asked.push(sizer.request(T0_MS));
    }
    // The recent count (1, 2, 4, ... admitted so far) would give 1, 3, 7,
    // ...; running dry doubles the previous request.
    assert_eq!(asked, [1, 2, 4, 8, 16, 32, 64]);
    // Served in time again: back to the rate (all 127 admitted so far).
    admit_n(&mut sizer, 64, T0_MS);
    assert_eq!(sizer.request(T0_MS), 127);
}

#[test]
fn running_dry_after_a_quiet_spell_does_not_double() {
    let mut sizer = LeaseSizer::new(1);
    admit_n(&mut sizer, 500, T0_MS);
    assert_eq!(sizer.request(T0_MS), 500);
    // In the next interval, running dry doubles.
    sizer.record_starved();
    assert_eq!(sizer.units(T0_MS + LEASE_REFILL_MS), 1000);
    // Later, it does not.
    assert_eq!(sizer.units(T0_MS + 2 * LEASE_REFILL_MS), 1);
}

#[test]
fn is_capped() {
    let mut sizer = LeaseSizer::new(1);
    admit_n(&mut sizer, MAX_LEASE_UNITS * 3, T0_MS);
    assert_eq!(sizer.request(T0_MS), MAX_LEASE_UNITS);
    sizer.record_starved();
    assert_eq!(sizer.request(T0_MS), MAX_LEASE_UNITS);
    // A configured minimum above the cap is kept.
    assert_eq!(LeaseSizer::new(MAX_LEASE_UNITS * 2).request(T0_MS), MAX_LEASE_UNITS * 2);
}

#[test]
fn a_clock_stepping_back_keeps_counting() {
    let mut sizer = LeaseSizer::new(1);
    admit_n(&mut sizer, 10, T0_MS + LEASE_REFILL_MS);
    admit_n(&mut sizer, 10, T0_MS);
    assert_eq!(sizer.units(T0_MS), 20);
}

#[test]
fn fair_share_is_half_an_even_split() {
    assert_eq!(fair_share_units(10, 3), 1);
    assert_eq!(fair_share_units(100, 3), 16);
    assert_eq!(fair_share_units(1_000_000, 3), 166_666);
    // Never below one unit, even with nothing known free or no members.
    assert_eq!(fair_share_units(0, 3), 1);
    assert_eq!(fair_share_units(5, 0), 2);
}

proptest! {
    #[test]
    fn requests_stay_within_bounds(
        min_units in 0..200u64,
        steps in prop::collection::vec((0..3u8, 0..1_000u64, 0..5_000u64), 1..200),
    ) {
        let mut sizer = LeaseSizer::new(min_units);
        let mut now_ms = T0_MS;
        for (kind, n, advance_ms) in steps {
            now_ms += advance_ms;
            match kind {
                0 => admit_n(&mut sizer, n, now_ms),
                1 => sizer.record_starved(),
                _ => {
                    let units = sizer.request(now_ms);
                    prop_assert!(units >= min_units.max(1));
                    prop_assert!(units <= MAX_LEASE_UNITS.max(min_units));
                }
            }
        }
    }

    /// However many members ask against the same view at once, together
    /// they ask for at most half of what it shows free (once a unit each
    /// fits in that half).
    #[test]
    fn members_asking_at_once_take_at_most_half(free in 0..2_000_000u64, members in 1..64u64) {
        let share = fair_share_units(free, members);
        prop_assert!(share >= 1);
        if free >= 2 * members {
            prop_assert!(share * members <= free / 2);
        }
    }
}
