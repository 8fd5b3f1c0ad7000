//! midge-bench: midge and Mosquitto side by side under the same load.
//!
//! For each scenario and round it starts a fresh midge, runs the scenario, stops it, then
//! does the same with a fresh Mosquitto (A B A B …), and finally prints per metric the
//! median and range of each broker and their ratio. See tests/bench/BENCHMARKS.md.

mod broker;
mod machine;
mod mqtt;
mod proc;
mod report;
mod scenario;
mod seq;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use broker::{Broker, Kind, Spec};
use report::Report;
use scenario::{Scenario, Settings};

/// Benchmarks midge against Mosquitto: throughput, CPU, memory, latency, startup.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Scenarios to run: `all`, or any of fanin-q0 fanin-q1 fanout-q0 fanout-q1 pairs-q0
    /// pairs-q1 slow-sub conns latency startup.
    #[arg(required = true, value_name = "SCENARIO")]
    scenarios: Vec<String>,
    /// Rounds per scenario and broker (each on a fresh broker).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Every scenario tiny: checks that the harness works, in seconds.
    #[arg(long)]
    quick: bool,
    /// Pin the broker to core 0 and the generator to core 1.
    #[arg(long)]
    pin: bool,
    /// Which brokers to run (default both).
    #[arg(long, value_delimiter = ',', default_values = ["midge", "mosquitto"])]
    brokers: Vec<BrokerArg>,
    /// The midge binary (default: `midge` next to this binary).
    #[arg(long, value_name = "PATH")]
    midge: Option<PathBuf>,
    /// The Mosquitto binary.
    #[arg(long, value_name = "PATH")]
    mosquitto: Option<PathBuf>,
    /// Generator threads (default: 1 with --pin, else 2).
    #[arg(long)]
    threads: Option<usize>,
    /// Seconds each throughput scenario sends for.
    #[arg(long)]
    duration: Option<f64>,
    /// Messages a publisher may be ahead of its subscribers (throughput scenarios).
    #[arg(long)]
    window: Option<usize>,
    /// Idle connections in the conns scenario.
    #[arg(long)]
    conns: Option<usize>,
    /// Brokers persist (midge `sync`, Mosquitto `persistence true`) and the throughput
    /// scenarios' subscribers have persistent sessions: every QoS 1 delivery is logged.
    #[arg(long)]
    persistent: bool,
    /// Also write the report (Markdown) to this file.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum BrokerArg {
    Midge,
    Mosquitto,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("midge-bench: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs everything; `Ok(false)` when a run failed (e.g. lost a QoS 1 message).
fn run(args: &Args) -> Result<bool, String> {
    let scenarios = parse_scenarios(&args.scenarios)?;
    let mut settings = if args.quick {
        Settings::quick()
    } else {
        Settings::full()
    };
    if let Some(d) = args.duration {
        settings.duration = Duration::from_secs_f64(d);
        settings.latency_duration = settings.duration;
    }
    if let Some(w) = args.window {
        settings.window = w.max(1);
    }
    if let Some(c) = args.conns {
        settings.conns = c;
    }
    settings.persistent = args.persistent;
    let specs: Vec<Spec> = args
        .brokers
        .iter()
        .map(|b| {
            let kind = match b {
                BrokerArg::Midge => Kind::Midge,
                BrokerArg::Mosquitto => Kind::Mosquitto,
            };
            let given = match kind {
                Kind::Midge => args.midge.clone(),
                Kind::Mosquitto => args.mosquitto.clone(),
            };
            Spec {
                kind,
                bin: given.unwrap_or_else(|| broker::default_bin(kind)),
                core: args.pin.then_some(0),
            }
        })
        .collect();

    // Described before pinning, which would make this process see one core.
    let mut header = machine::describe(&specs);
    let nofile = proc::raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    if args.pin {
        if proc::cores() < 2 {
            return Err("--pin needs two cores".to_owned());
        }
        // Before the runtime starts its threads, which inherit the mask.
        proc::pin_to_core(1).map_err(|e| format!("pinning to core 1: {e}"))?;
    }
    let threads = args.threads.unwrap_or(if args.pin { 1 } else { 2 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;

    header.push_str(&format!(
        "- generator: {threads} thread(s){}; open-file limit {nofile}\n- load average before: {}\n",
        if args.pin {
            ", broker pinned to core 0, generator to core 1"
        } else {
            ", nothing pinned"
        },
        proc::load_average()
    ));
    if args.persistent {
        header.push_str(
            "- persistence on: midge `sync`, Mosquitto `persistence true`; subscribers with \
             persistent sessions\n",
        );
    }
    eprint!("{header}");

    let mut report = Report::default();
    runtime.block_on(async {
        for &scenario in &scenarios {
            let name = scenario.name();
            let description = scenario.describe(&settings);
            for round in 1..=args.rounds {
                for spec in &specs {
                    let started = Broker::start(spec, scenario.queue_limit(), settings.persistent);
                    let result = match started.await {
                        Ok(mut broker) => scenario.run(&mut broker, &settings).await,
                        Err(e) => Err(e),
                    };
                    match result {
                        Ok(outcome) => {
                            eprintln!(
                                "{name} round {round}/{} {}: {}",
                                args.rounds,
                                spec.kind,
                                brief(&outcome)
                            );
                            report.add(&name, &description, spec.kind, round, outcome);
                        }
                        Err(e) => {
                            eprintln!("{name} round {round} {}: FAILED: {e}", spec.kind);
                            report.fail(format!("{name}, round {round}, {}: {e}", spec.kind));
                        }
                    }
                }
            }
        }
    });
    header.push_str(&format!("- load average after: {}\n", proc::load_average()));

    let text = format!("{header}\n{}", report.markdown());
    println!("{text}");
    if let Some(path) = &args.output {
        std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(report.failures.is_empty())
}

fn parse_scenarios(names: &[String]) -> Result<Vec<Scenario>, String> {
    let mut out = Vec::new();
    for name in names {
        if name == "all" {
            out.extend(Scenario::ALL);
            continue;
        }
        let s = <Scenario as clap::ValueEnum>::from_str(name, true).map_err(|_| {
            let known: Vec<String> = Scenario::ALL.iter().map(|s| s.name()).collect();
            format!("unknown scenario {name:?}; known: all {}", known.join(" "))
        })?;
        out.push(s);
    }
    Ok(out)
}

/// The first two metrics of a run, for the progress lines.
fn brief(outcome: &scenario::Outcome) -> String {
    let mut parts: Vec<String> = outcome
        .metrics
        .iter()
        .take(2)
        .map(|(name, v)| format!("{name} {v:.3}"))
        .collect();
    parts.extend(outcome.failures.iter().map(|f| format!("FAILED: {f}")));
    parts.join(", ")
}
