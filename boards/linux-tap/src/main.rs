//! midge's sensor node as a Linux process: the same `midge-node` / `midge-client` code the
//! boards run, on embassy's std executor and the real embassy-net/smoltcp stack, with a
//! TAP device as its Ethernet port. Used by `e2e.sh` to prove the firmware against the
//! real broker; also handy for trying a broker setup without hardware.
//!
//! ```text
//! midge-linux-tap --tap tap0 --broker 10.99.0.1 --device-id node1
//!     [--ip 10.99.0.2/24 --gateway 10.99.0.1 --dns 10.99.0.1]   # static; DHCP without --ip
//!     [--port 1883] [--period-ms 1000] [--keep-alive 60] [--timeout-ms 10000]
//!     [--backoff-max-ms 60000] [--v5] [--coap]
//! ```
//!
//! The sensor is synthetic: sample `n` reads `20 + (n mod 16) / 4` °C, so a test can
//! predict every payload byte for byte.

mod args;

use args::Args;
use embassy_executor::Spawner;
use embassy_net::{Runner, StackResources};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::Duration;
use midge_node::{NodeConfig, Quantity, Reading, Sample, Sensor};
use static_cell::StaticCell;

/// Counts its samples; the value is a function of the count.
struct Synthetic {
    samples: u32,
}

impl Sensor for Synthetic {
    async fn sample(&mut self) -> Sample {
        let value = synthetic_celsius(self.samples);
        // The e2e test counts these to know how many samples were taken while the broker
        // was unreachable.
        println!("sample {} {value}", self.samples);
        self.samples += 1;
        let mut sample = Sample::new();
        let pushed = sample.push(Reading {
            quantity: Quantity::Temperature,
            value,
        });
        debug_assert!(pushed.is_ok());
        sample
    }

    fn command(&mut self, name: &str, payload: &[u8]) {
        println!("command {name} {}", String::from_utf8_lossy(payload));
    }
}

/// Multiples of 0.25 between 20 and 23.75: exact in binary, so their JSON is short.
fn synthetic_celsius(n: u32) -> f32 {
    20.0 + (n % 16) as f32 * 0.25
}

/// The node's connection events (`log` feature of midge-node), on stderr.
struct StderrLogger;

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::Level::Info
    }

    fn log(&self, record: &log::Record<'_>) {
        if self.enabled(record.metadata()) {
            eprintln!("{} {}: {}", record.level(), record.target(), record.args());
        }
    }

    fn flush(&self) {}
}

#[embassy_executor::task]
async fn net_task(mut runner: Runner<'static, TunTapDevice>) -> ! {
    runner.run().await
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    static LOGGER: StderrLogger = StderrLogger;
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("midge-linux-tap: {message}\n\n{}", args::USAGE);
            std::process::exit(2);
        }
    };
    let device = match TunTapDevice::new(&args.tap) {
        Ok(device) => device,
        Err(e) => {
            eprintln!("midge-linux-tap: cannot open TAP device {}: {e}", args.tap);
            std::process::exit(1);
        }
    };
    let seed = random_seed();
    static RESOURCES: StaticCell<StackResources<4>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(
        device,
        args.net_config(),
        RESOURCES.init(StackResources::new()),
        seed,
    );
    spawner.spawn(net_task(runner).expect("net task spawned once"));

    static ARGS: StaticCell<Args> = StaticCell::new();
    let args: &'static Args = ARGS.init(args);
    let mut config = NodeConfig::new(&args.device_id, &args.broker);
    config.mqtt_port = args.port.unwrap_or(config.mqtt_port);
    config.coap_port = args.port.unwrap_or(config.coap_port);
    config.period = Duration::from_millis(args.period_ms);
    config.keep_alive_secs = args.keep_alive_secs;
    config.response_timeout = Duration::from_millis(args.timeout_ms);
    config.backoff.max = Duration::from_millis(args.backoff_max_ms);
    config.backoff.seed = seed as u32;
    if args.v5 {
        config.mqtt_version = midge_node::midge_client::ProtocolVersion::V5;
    }
    let mut sensor = Synthetic { samples: 0 };
    println!("node {} publishing to {}", args.device_id, args.broker);
    let error = if args.coap {
        midge_node::coap::run(stack, &config, &mut sensor).await
    } else {
        midge_node::mqtt::run::<_, 256, 64>(stack, &config, &mut sensor).await
    };
    eprintln!("midge-linux-tap: invalid configuration: {error}");
    std::process::exit(2);
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    match std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
    {
        Ok(()) => u64::from_le_bytes(bytes),
        Err(_) => std::process::id().into(),
    }
}
