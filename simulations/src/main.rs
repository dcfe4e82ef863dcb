//! `ollystack-simulations --seed S [--steps N]` runs one seed in this
//! process; `--seeds A..B` sweeps seeds A to B-1 (`--seeds 7,19` those
//! seeds); `--determinism` runs a
//! seed twice and compares the event traces; `--jobs N` runs N seeds at
//! once (default: one per CPU). A sweep ends with seeds per second and the
//! failures by invariant. Exit status 1 when any seed fails.
//!
//! A sweep and the determinism check run every seed in its own child
//! process (this binary with `--seed S`): a run pins the process's clocks
//! (`interpose`), and a hung child can be killed.

mod interpose;

use std::io::Read;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use ollystack_node::server::Faults;
use ollystack_simulations::{run, Params};

struct Args {
    /// Seeds to run, in order.
    seeds: Vec<u64>,
    steps: Option<u64>,
    determinism: bool,
    all_faults: bool,
    faults: Faults,
    verbose: bool,
    /// Seeds run at once in a sweep (child processes).
    jobs: usize,
    /// The arguments a child run gets besides `--seed`.
    passed_on: Vec<String>,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: ollystack-simulations (--seed S | --seeds A..B|S,S,.. [--jobs N]) [--steps N] [--all-faults] [--determinism] [--verbose]\n\
         \x20      [--bug ack-before-durable|skip-handoff|skip-archive-handover|skip-binding-sync]"
    );
    ExitCode::from(2)
}

/// `A..B` (A to B-1) or a comma-separated list `7,19,42`.
fn parse_seeds(v: &str) -> Option<Vec<u64>> {
    let seeds: Vec<u64> = match v.split_once("..") {
        Some((a, b)) => (a.parse().ok()?..b.parse().ok()?).collect(),
        None => v.split(',').map(|s| s.trim().parse().ok()).collect::<Option<_>>()?,
    };
    (!seeds.is_empty()).then_some(seeds)
}

fn parse() -> Option<Args> {
    let mut args = Args {
        seeds: vec![0],
        steps: None,
        determinism: false,
        all_faults: false,
        faults: Faults::default(),
        verbose: false,
        jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
        passed_on: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--seed" => {
                let s: u64 = it.next()?.parse().ok()?;
                args.seeds = vec![s];
            }
            "--seeds" => args.seeds = parse_seeds(&it.next()?)?,
            "--steps" => {
                let n = it.next()?;
                args.steps = Some(n.parse().ok()?);
                args.passed_on.extend(["--steps".to_owned(), n]);
            }
            "--determinism" => args.determinism = true,
            "--jobs" => args.jobs = it.next()?.parse().ok().filter(|j| *j > 0)?,
            "--all-faults" => {
                args.all_faults = true;
                args.passed_on.push(a);
            }
            "--verbose" => {
                args.verbose = true;
                args.passed_on.push(a);
            }
            "--bug" => {
                let bug = it.next()?;
                match bug.as_str() {
                    "ack-before-durable" => args.faults.ack_before_durable = true,
                    "skip-handoff" => args.faults.skip_handoff = true,
                    "skip-archive-handover" => args.faults.skip_archive_handover = true,
                    "skip-binding-sync" => args.faults.skip_binding_sync = true,
                    _ => return None,
                }
                args.passed_on.extend(["--bug".to_owned(), bug]);
            }
            _ => return None,
        }
    }
    Some(args)
}

/// Runs one seed here; prints its report. Returns (passed, simulated ms).
fn run_here(args: &Args, seed: u64) -> (bool, u64) {
    let mut params = Params::from_seed(seed, args.steps);
    if args.all_faults {
        params = params.with_all_faults();
    }
    println!("{params}");
    // From here on the process's clocks read simulated time.
    ollystack_simulations::os::begin_run(interpose::real_monotonic());
    let outcome = match run(params, args.faults) {
        Ok(o) => o,
        Err(e) => {
            println!("  seed {seed}: could not run: {e}");
            return (false, 0);
        }
    };
    let t = outcome.totals;
    let (spans, logs, exemplars) = (t.spans, t.logs, t.exemplars);
    println!(
        "  {} in {:.1} simulated s: spans {}/{} acked, logs {}/{} acked, exemplars {}/{} acked, {} raft terms, {} ring epochs, trace {:016x}",
        if outcome.passed() { "passed" } else { "FAILED" },
        outcome.simulated_ms as f64 / 1000.0,
        spans.1,
        spans.0,
        logs.1,
        logs.0,
        exemplars.1,
        exemplars.0,
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
    }
    println!("simulated-ms {}", outcome.simulated_ms);
    (outcome.passed(), outcome.simulated_ms)
}

/// Real time one seed may take before it counts as hung. A run takes a few
/// seconds; a hang means simulated time stopped (a task that never yields
/// to the clock: a livelock in the node).
const RUN_DEADLINE: Duration = Duration::from_secs(180);

/// Runs one seed in a child process: (passed, simulated ms, trace hash, output).
fn run_child(args: &Args, seed: u64) -> std::io::Result<(bool, u64, Option<String>, String)> {
    let mut child = Command::new(std::env::current_exe()?)
        .arg("--seed")
        .arg(seed.to_string())
        .args(&args.passed_on)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("no stdout"))?;
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = reader.join().unwrap_or_default();
    let simulated = text.lines().find_map(|l| l.strip_prefix("simulated-ms ")).and_then(|v| v.parse().ok()).unwrap_or(0);
    let hash = text.lines().find_map(|l| l.rsplit_once(", trace ").map(|(_, h)| h.to_owned()));
    match status {
        None => Ok((
            false,
            simulated,
            hash,
            format!("{text}  HUNG: no result after {} s of real time (simulated time stopped)\n", RUN_DEADLINE.as_secs()),
        )),
        Some(s) if !s.success() && s.code() != Some(1) => Ok((false, simulated, hash, format!("{text}  the run crashed: {s}\n"))),
        Some(s) => Ok((s.success(), simulated, hash, text)),
    }
}

/// One seed's result in a sweep.
struct SeedResult {
    seed: u64,
    passed: bool,
    simulated_ms: u64,
    /// What the run printed (and the determinism verdict).
    report: String,
}

/// Runs one seed of a sweep in a child (twice with `--determinism`).
fn sweep_one(args: &Args, seed: u64) -> SeedResult {
    let (passed, simulated_ms, hash, text) = match run_child(args, seed) {
        Ok(r) => r,
        Err(e) => (false, 0, None, format!("seed {seed}: could not start a run: {e}\n")),
    };
    let mut report: String = text.lines().filter(|l| !l.starts_with("simulated-ms ")).map(|l| format!("{l}\n")).collect();
    let mut ok = passed;
    if ok && args.determinism {
        match run_child(args, seed) {
            Ok((_, _, again, _)) if again.is_some() && again == hash => {
                report.push_str("  deterministic: a second run has the same trace\n")
            }
            Ok((_, _, again, _)) => {
                report.push_str(&format!("  NOT DETERMINISTIC: trace {} then {}\n", hash.unwrap_or_default(), again.unwrap_or_default()));
                ok = false;
            }
            Err(e) => {
                report.push_str(&format!("  the second run could not start: {e}\n"));
                ok = false;
            }
        }
    }
    SeedResult { seed, passed: ok, simulated_ms, report }
}

/// Runs the sweep's seeds, `args.jobs` at a time, and prints each report
/// as it completes; then the totals and the failures by invariant.
fn sweep(args: &Args) -> bool {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::channel::<SeedResult>();
    let started = Instant::now();
    let mut failed = Vec::new();
    let mut summary = ollystack_simulations::summary::Summary::default();
    let mut simulated_ms = 0;
    std::thread::scope(|scope| {
        for _ in 0..args.jobs {
            let (tx, next) = (tx.clone(), &next);
            scope.spawn(move || loop {
                let at = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(&seed) = args.seeds.get(at) else { return };
                if tx.send(sweep_one(args, seed)).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        for r in rx {
            print!("{}", r.report);
            simulated_ms += r.simulated_ms;
            if !r.passed {
                failed.push(r.seed);
                summary.add(r.seed, &r.report);
            }
        }
    });
    failed.sort_unstable();
    let count = args.seeds.len();
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{count} seed(s), {} failed {failed:?}; {:.1} simulated minutes ({:.2} h) in {wall:.0} s: {:.2} seeds/s, {} at a time",
        failed.len(),
        simulated_ms as f64 / 60_000.0,
        simulated_ms as f64 / 3_600_000.0,
        count as f64 / wall.max(0.001),
        args.jobs
    );
    if !summary.is_empty() {
        print!("failures by invariant:\n{summary}");
    }
    failed.is_empty()
}

fn main() -> ExitCode {
    let Some(args) = parse() else { return usage() };
    if !cfg!(tokio_unstable) {
        eprintln!("warning: built without --cfg tokio_unstable: tokio's select! choices are not seeded and a seed may not replay exactly; use scripts/simulate");
    }
    if std::env::var_os("RUST_LOG").is_some() {
        ollystack_simulations::logs::init();
    }
    if args.seeds.len() == 1 && !args.determinism {
        let (passed, _) = run_here(&args, args.seeds[0]);
        return if passed { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    if sweep(&args) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
