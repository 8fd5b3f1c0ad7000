//! Runs the paho-mqtt 2.x scenarios of `tests/python/mqtt5.py` against a running midge.
//!
//! paho lives in a virtual environment in the build tree, `target/e2e-venv`, which
//! `tests/run` creates (`$MIDGE_E2E_PYTHON` names another interpreter). A scenario prints
//! one JSON object per line for each thing it observed (`{"event": "message", ...}`) and
//! exits 0; the Rust test asserts on those lines.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::Midge;

/// The interpreter of the test virtual environment.
pub fn interpreter() -> PathBuf {
    if let Some(python) = std::env::var_os("MIDGE_E2E_PYTHON") {
        return python.into();
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let python = target.join("e2e-venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: the MQTT 5 tests need paho-mqtt 2.x in that virtual environment. \
         Run `bash tests/run` (it creates it), or by hand: python3 -m venv target/e2e-venv && \
         target/e2e-venv/bin/pip install 'paho-mqtt>=2,<3'",
        python.display()
    );
    python
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/mqtt5.py")
}

/// What a scenario printed.
#[derive(Debug)]
pub struct Run {
    /// One JSON object per line of its standard output.
    pub events: Vec<Value>,
}

impl Run {
    /// The events whose `"event"` is `kind`, in order.
    pub fn all(&self, kind: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event"].as_str() == Some(kind))
            .collect()
    }

    /// The one event whose `"event"` is `kind`.
    pub fn one(&self, kind: &str) -> &Value {
        let all = self.all(kind);
        assert_eq!(
            all.len(),
            1,
            "one {kind:?} event expected in {:#?}",
            self.events
        );
        all[0]
    }
}

impl Midge {
    /// Runs scenario `name` of `tests/python/mqtt5.py` against this broker and checks it
    /// exited 0. Its failures (exceptions, timeouts) fail the test with its stderr.
    pub fn python(&self, name: &str, args: &[&str]) -> Run {
        let python = interpreter();
        let output = Command::new(&python)
            .arg(script())
            .args(["--port", &self.port().to_string(), name])
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "python scenario {name} {args:?} failed ({}).\nstdout:\n{stdout}\nstderr:\n{stderr}",
            output.status
        );
        let events = stdout
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("scenario {name} printed {l:?}, not JSON: {e}"))
            })
            .collect();
        Run { events }
    }
}
