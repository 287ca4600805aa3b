//! Session benchmarks, through the public sans-IO API only (`Interpreter::new`, `start`,
//! `poll_action`, `handle_event`), with every fetch answered from memory: nothing here depends
//! on how the interpreter hosts ECMAScript (one boa context per session today, one per thread
//! later).
//!
//! `cargo bench -p vxml-interp --bench session` prints, besides criterion's timings:
//! - bytes live per session once an application root and a leaf are loaded (1,000 sessions
//!   kept alive, counted by the global allocator);
//! - the pause of a full garbage collection with those 1,000 sessions alive on this thread.
//!
//! Figures and the machine they came from: `benches/README.md`.
#![allow(missing_docs)] // a bench binary, not an API
// A benchmark reads the clock; the sans-IO rule is for the library.
#![allow(clippy::disallowed_methods)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use vxml_interp::{
    Action, CollectRequest, Fetched, InputResult, Interpreter, PlatformEvent, PlayItem, SessionInfo,
};

/// Counts the bytes allocated and not yet freed. `cap` wraps `System` behind a safe API, so
/// the bench needs no `unsafe` of its own (the workspace forbids it in every target).
#[global_allocator]
static ALLOCATOR: cap::Cap<std::alloc::System> = cap::Cap::new(std::alloc::System, usize::MAX);

/// An application root: a few variables, a script and a catch.
const ROOT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <var name="caller" expr="'anonymous'"/>
  <var name="attempts" expr="0"/>
  <var name="language" expr="'en-US'"/>
  <var name="account" expr="{id: 0, balance: 0, owner: caller}"/>
  <script>function greeting(name) { return 'Welcome ' + name; }</script>
  <catch event="error">
    <prompt>Sorry, something went wrong.</prompt>
    <exit/>
  </catch>
</vxml>"#;

/// A leaf of that application: a form with blocks and a field.
const LEAF: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml" application="root.vxml">
  <form id="main">
    <var name="pin"/>
    <block>
      <prompt><value expr="greeting(caller)"/></prompt>
    </block>
    <block>
      <assign name="attempts" expr="attempts + 1"/>
      <if cond="attempts &gt; 3">
        <prompt>Too many attempts.</prompt>
        <exit/>
      </if>
    </block>
    <field name="code" type="digits">
      <prompt>Please enter your code, then press pound.</prompt>
      <filled>
        <assign name="pin" expr="code"/>
        <prompt>You entered <value expr="code"/>.</prompt>
      </filled>
    </field>
    <block>
      <prompt>Goodbye.</prompt>
      <disconnect/>
    </block>
  </form>
</vxml>"#;

/// Executable content in a loop: every input runs the `work` block `LOOPS` times through
/// `<goto nextitem>`, then clears the form so that the field collects again.
const LOOPS: u64 = 100;
const LOOP: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<vxml version="2.1" xmlns="http://www.w3.org/2001/vxml">
  <form id="loop">
    <var name="i" expr="0"/>
    <var name="total" expr="0"/>
    <field name="key" type="digits">
      <prompt><value expr="total"/></prompt>
      <filled><assign name="i" expr="0"/></filled>
    </field>
    <block name="work">
      <assign name="i" expr="i + 1"/>
      <assign name="total" expr="total + i"/>
      <if cond="i &lt; 100">
        <goto nextitem="work"/>
      <else/>
        <clear namelist="key work"/>
      </if>
    </block>
  </form>
</vxml>"#;
/// Executable elements per input: the `<filled>` assign, then per loop two assigns, the `<if>`
/// and a `<goto>` (a `<clear>` the last time). The field's prompt (the running total) lets
/// [`check_loop`] see that the loop ran.
const ELEMENTS_PER_INPUT: u64 = 1 + LOOPS * 4;

const BASE: &str = "http://bench.test/";

fn body(url: &url::Url) -> Option<&'static str> {
    match url.path() {
        "/root.vxml" => Some(ROOT),
        "/leaf.vxml" => Some(LEAF),
        "/loop.vxml" => Some(LOOP),
        _ => None,
    }
}

/// Drives `interp` until it collects input, answering fetches from memory; the collection and
/// the text of the prompts queued on the way.
fn until_collect(interp: &mut Interpreter, now: Instant) -> (CollectRequest, Vec<String>) {
    let mut texts = Vec::new();
    loop {
        match interp.poll_action(now) {
            Action::Fetch(req) => {
                let body = body(&req.url)
                    .unwrap_or_else(|| panic!("unexpected fetch of {}", req.url))
                    .as_bytes()
                    .to_vec();
                let fetched = Fetched {
                    url: req.url,
                    status: 200,
                    content_type: Some("application/voicexml+xml".into()),
                    body,
                };
                interp.handle_event(now, PlatformEvent::Fetched(Ok(fetched)));
            }
            Action::Queue(items) => {
                texts.extend(items.into_iter().filter_map(|item| match item {
                    PlayItem::Text(text) => Some(text),
                    _ => None,
                }));
            }
            Action::Collect(req) => return (req, texts),
            other => panic!("expected a collection, got {other:?}"),
        }
    }
}

/// A new session with `doc` loaded, waiting for its first input.
fn loaded(doc: &str, now: Instant) -> Interpreter {
    let mut interp = Interpreter::new(SessionInfo::default());
    let url = url::Url::parse(BASE).and_then(|b| b.join(doc));
    interp.start(url.expect("a valid url"));
    until_collect(&mut interp, now);
    interp
}

/// One input to the loop document; the prompts of the next collection.
fn loop_once(interp: &mut Interpreter, now: Instant) -> Vec<String> {
    let input = InputResult::dtmf_text("1", "1");
    interp.handle_event(now, PlatformEvent::Input(input));
    until_collect(interp, now).1
}

/// The loop document does what the throughput figure assumes: `LOOPS` passes per input.
fn check_loop() {
    let now = Instant::now();
    let mut interp = loaded("loop.vxml", now);
    let sum: u64 = (1..=LOOPS).sum();
    assert_eq!(loop_once(&mut interp, now), vec![sum.to_string()]);
    assert_eq!(loop_once(&mut interp, now), vec![(2 * sum).to_string()]);
}

fn session_benches(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("session");
    group.measurement_time(Duration::from_secs(10));
    group.bench_function("new", |b| {
        b.iter_with_large_drop(|| Interpreter::new(SessionInfo::default()));
    });
    group.bench_function("load_root_leaf", |b| {
        b.iter_with_large_drop(|| loaded("leaf.vxml", now));
    });
    group.finish();

    let mut group = c.benchmark_group("fia");
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(ELEMENTS_PER_INPUT));
    group.bench_function("input_cycle", |b| {
        b.iter_batched_ref(
            || loaded("loop.vxml", now),
            |interp| black_box(loop_once(interp, now)),
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

/// Bytes live now, as the global allocator counts them.
fn live() -> f64 {
    ALLOCATOR.allocated() as f64
}

fn kib(bytes: f64) -> String {
    format!("{:.1} KiB", bytes / 1024.0)
}

fn median(sorted: &[Duration]) -> Duration {
    sorted[sorted.len() / 2]
}

/// Memory per session and GC pauses with `SESSIONS` sessions alive on this thread.
fn memory_and_gc() {
    const SESSIONS: usize = 1_000;
    const COLLECTIONS: usize = 11;
    let now = Instant::now();
    // Warm up thread-locals and caches, then start from a collected heap.
    drop(loaded("leaf.vxml", now));
    boa_gc::force_collect();

    let before = live();
    let bare: Vec<Interpreter> = (0..SESSIONS)
        .map(|_| Interpreter::new(SessionInfo::default()))
        .collect();
    boa_gc::force_collect();
    let per_bare = (live() - before) / SESSIONS as f64;
    drop(bare);
    boa_gc::force_collect();

    let before = live();
    let started = Instant::now();
    let sessions: Vec<Interpreter> = (0..SESSIONS).map(|_| loaded("leaf.vxml", now)).collect();
    let load_time = started.elapsed();
    let per_loaded = (live() - before) / SESSIONS as f64;

    let mut pauses = Vec::with_capacity(COLLECTIONS);
    for _ in 0..COLLECTIONS {
        let t = Instant::now();
        boa_gc::force_collect();
        pauses.push(t.elapsed());
    }
    let per_collected = (live() - before) / SESSIONS as f64;
    let first = pauses[0];
    let mut rest = pauses[1..].to_vec();
    rest.sort();
    let total = live();

    println!();
    println!("memory ({SESSIONS} sessions alive, root + leaf loaded, waiting in Collect):");
    println!(
        "  Interpreter::new alone:     {} per session (after a collection)",
        kib(per_bare)
    );
    println!(
        "  root + leaf loaded:         {} per session (as loaded, garbage included)",
        kib(per_loaded)
    );
    println!(
        "  root + leaf, collected:     {} per session (after a full collection)",
        kib(per_collected)
    );
    println!(
        "  loading {SESSIONS} sessions took {:.1} ms ({:.0} µs each); {} live in all",
        load_time.as_secs_f64() * 1e3,
        load_time.as_secs_f64() * 1e6 / SESSIONS as f64,
        kib(total)
    );
    println!("gc (boa_gc::force_collect with {SESSIONS} sessions alive, one thread):");
    println!(
        "  first collection:           {:.2} ms (garbage of the loads included)",
        first.as_secs_f64() * 1e3
    );
    println!(
        "  next {} collections:        median {:.2} ms, max {:.2} ms",
        rest.len(),
        median(&rest).as_secs_f64() * 1e3,
        rest[rest.len() - 1].as_secs_f64() * 1e3
    );
    drop(black_box(sessions));
}

fn main() {
    // Criterion's own options (`--quick`, a filter) still apply to the timed part.
    check_loop();
    let mut criterion = Criterion::default().configure_from_args();
    session_benches(&mut criterion);
    criterion.final_summary();
    memory_and_gc();
}
