//! `cargo run -p ollystack-simulations -- --seed S [--steps N]` runs one
//! seed; `--seeds A..B` sweeps seeds A to B-1; `--determinism` runs each
//! seed twice and compares the event traces. Exit status 1 when any seed
//! fails.

use std::process::ExitCode;

use ollystack_node::node::Faults;
use ollystack_simulations::{run, Params};

struct Args {
    seeds: std::ops::Range<u64>,
    steps: Option<u64>,
    determinism: bool,
    all_faults: bool,
    faults: Faults,
    verbose: bool,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: ollystack-simulations (--seed S | --seeds A..B) [--steps N] [--all-faults] [--determinism] [--verbose]\n\
         \x20      [--bug ack-before-durable|skip-handoff]"
    );
    ExitCode::from(2)
}

fn parse() -> Option<Args> {
    let mut args = Args { seeds: 0..1, steps: None, determinism: false, all_faults: false, faults: Faults::default(), verbose: false };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => {
                let s: u64 = it.next()?.parse().ok()?;
                args.seeds = s..s + 1;
            }
            "--seeds" => {
                let v = it.next()?;
                let (a, b) = v.split_once("..")?;
                args.seeds = a.parse().ok()?..b.parse().ok()?;
            }
            "--steps" => args.steps = Some(it.next()?.parse().ok()?),
            "--determinism" => args.determinism = true,
            "--all-faults" => args.all_faults = true,
            "--verbose" => args.verbose = true,
            "--bug" => match it.next()?.as_str() {
                "ack-before-durable" => args.faults.ack_before_durable = true,
                "skip-handoff" => args.faults.skip_handoff = true,
                _ => return None,
            },
            _ => return None,
        }
    }
    Some(args)
}

fn main() -> ExitCode {
    let Some(args) = parse() else { return usage() };
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).with_writer(std::io::stderr).init();
    }
    let mut failed = Vec::new();
    let mut simulated_ms = 0;
    let started = std::time::Instant::now();
    for seed in args.seeds.clone() {
        let mut params = Params::from_seed(seed, args.steps);
        if args.all_faults {
            params = params.with_all_faults();
        }
        println!("{params}");
        let outcome = match run(params.clone(), args.faults) {
            Ok(o) => o,
            Err(e) => {
                println!("  seed {seed}: could not run: {e}");
                failed.push(seed);
                continue;
            }
        };
        simulated_ms += outcome.simulated_ms;
        let (sent_spans, acked_spans, sent_logs, acked_logs) = outcome.totals;
        println!(
            "  {} in {:.1} simulated s: spans {acked_spans}/{sent_spans} acked, logs {acked_logs}/{sent_logs} acked, {} raft terms, {} ring epochs, trace {:016x}",
            if outcome.passed() { "passed" } else { "FAILED" },
            outcome.simulated_ms as f64 / 1000.0,
            outcome.raft_terms,
            outcome.ring_epochs,
            outcome.trace_hash
        );
        if args.verbose {
            outcome.events.iter().for_each(|e| println!("    {e}"));
        }
        if !outcome.passed() {
            if !args.verbose {
                println!("  event trace (last {} events):", outcome.trace_tail().len());
                outcome.trace_tail().iter().for_each(|e| println!("    {e}"));
            }
            println!("  violated:");
            outcome.violations.iter().take(20).for_each(|v| println!("    {v}"));
            failed.push(seed);
            continue;
        }
        if args.determinism {
            match run(params, args.faults) {
                Ok(again) if again.trace_hash == outcome.trace_hash => println!("  deterministic: second run has the same trace"),
                Ok(again) => {
                    let at = outcome
                        .events
                        .iter()
                        .zip(&again.events)
                        .position(|(a, b)| a != b)
                        .unwrap_or(outcome.events.len().min(again.events.len()));
                    println!("  NOT DETERMINISTIC: traces differ from event {at}:");
                    println!("    first:  {}", outcome.events.get(at).map_or("(end)", String::as_str));
                    println!("    second: {}", again.events.get(at).map_or("(end)", String::as_str));
                    failed.push(seed);
                }
                Err(e) => {
                    println!("  second run could not run: {e}");
                    failed.push(seed);
                }
            }
        }
    }
    println!(
        "{} seed(s), {} failed {:?}; {:.1} simulated minutes in {:.0} s",
        args.seeds.end - args.seeds.start,
        failed.len(),
        failed,
        simulated_ms as f64 / 60_000.0,
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
