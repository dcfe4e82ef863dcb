//! `bindings`: what a ring change costs a node that holds many trace
//! bindings. After every ring change each node pages through its bindings
//! (`cluster::send_bindings_home`) and sends those whose trace is homed
//! elsewhere. This measures that scan (the part every node pays, even when
//! nothing moves) on a real sled trace index, and how many bindings a
//! fourth node joining would move.

use std::time::Instant;

use ollystack_cluster::ring::{KeyHash, Member, Ring};
use ollystack_cluster::NodeId;
use ollystack_node::correlate::{derive_from_trace, TraceBinding};
use ollystack_node::model::{CorrelationId, TenantId, TraceId};
use ollystack_node::store::TraceIndex;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Trace bindings the node holds.
    #[arg(long, default_value_t = 1_000_000)]
    bindings: u64,
}

/// Page size of the real pass.
const PAGE: usize = 4_096;

pub fn run(args: Args) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let db = sled::open(dir.path().join("db"))?;
    let traces = TraceIndex::open(&db)?;
    let tenant = TenantId::default_tenant();
    let started = Instant::now();
    for i in 1..=args.bindings {
        let mut t = [0u8; 16];
        t[..8].copy_from_slice(&i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_be_bytes());
        t[8..].copy_from_slice(&i.to_be_bytes());
        let binding = TraceBinding { id: CorrelationId::from_trusted(format!("req-{i}")), explicit: true };
        traces.bind(&tenant, TraceId(t), &binding, 0)?;
    }
    db.flush()?;
    let write_s = started.elapsed().as_secs_f64();

    let three: Vec<Member> = (1..=3).map(|n| Member::new(NodeId(n))).collect();
    let four: Vec<Member> = (1..=4).map(|n| Member::new(NodeId(n))).collect();
    let (before, after) = (Ring::new(1, &three)?, Ring::new(2, &four)?);
    let home = |ring: &Ring, trace: TraceId| ring.owner(KeyHash::of(tenant.as_str(), derive_from_trace(trace).as_str()));
    let started = Instant::now();
    let (mut seen, mut mine, mut moving) = (0u64, 0u64, 0u64);
    let mut after_key: Option<Vec<u8>> = None;
    loop {
        let (page, next) = traces.bindings_after(after_key.as_deref(), PAGE)?;
        let Some(next) = next else { break };
        for (_, trace, _) in page {
            seen += 1;
            if home(&before, trace) == NodeId(1) {
                mine += 1;
                if home(&after, trace) != NodeId(1) {
                    moving += 1;
                }
            }
        }
        after_key = Some(next);
    }
    let scan_s = started.elapsed().as_secs_f64();
    println!("trace bindings: {seen} held (written in {write_s:.1} s)");
    println!(
        "ring-change pass, scan only: {scan_s:.2} s ({:.0} bindings/s, {:.2} s per million)",
        seen as f64 / scan_s,
        scan_s * 1e6 / seen as f64
    );
    println!(
        "a fourth node joins: node 1 is home of {mine} of them and sends {moving} ({:.1}%) to the new node",
        100.0 * moving as f64 / mine.max(1) as f64
    );
    Ok(())
}
