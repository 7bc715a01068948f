//! The load generator's idle cost, and how to take it out of a measurement.
//!
//! On a KVM guest whose `cpuidle-haltpoll` driver does not poll
//! (`guest_halt_poll_ns` = 0, as on this machine), a core with nothing to
//! run halts, and waking it takes an inter-processor interrupt and an exit
//! to the hypervisor. Every answer the server writes wakes the load
//! generator on the other core, so that cost lands on the server's core,
//! inside the `writev` that sends the answer: `perf` shows it as
//! `_raw_spin_unlock_irqrestore` under `sock_def_readable`. It is not the
//! server's work, and it is not linear: the slower a server answers, the
//! longer the load generator idles and the more often it halts, so it
//! widens the gap between Tessera and its ceiling (BENCHMARKS.md).
//!
//! With `--halt-poll-ns N`, the harness sets `guest_halt_poll_ns` to N for
//! the run (an idle core polls for up to N ns before halting, so a wake-up
//! is a flag write) and puts the old value back when it ends.

use std::path::Path;

const KNOB: &str = "/sys/module/haltpoll/parameters/guest_halt_poll_ns";

/// Restores `guest_halt_poll_ns` when dropped.
pub struct HaltPoll {
    previous: String,
}

impl HaltPoll {
    /// Sets the guest halt-polling window; `Ok(None)` when this machine has no
    /// such knob (not a KVM guest with cpuidle-haltpoll), so nothing changes.
    pub fn set(nanoseconds: u64) -> Result<Option<Self>, String> {
        if !Path::new(KNOB).exists() {
            eprintln!("note: {KNOB} does not exist; --halt-poll-ns changes nothing here");
            return Ok(None);
        }
        let previous = std::fs::read_to_string(KNOB).map_err(|e| format!("reading {KNOB}: {e}"))?;
        std::fs::write(KNOB, nanoseconds.to_string()).map_err(|e| format!("writing {KNOB} (needs root): {e}"))?;
        eprintln!("guest_halt_poll_ns: {} -> {nanoseconds} for this run", previous.trim());
        Ok(Some(Self { previous }))
    }

    /// The current setting, for the report.
    pub fn current() -> Option<String> {
        std::fs::read_to_string(KNOB).ok().map(|v| v.trim().to_owned())
    }
}

impl Drop for HaltPoll {
    fn drop(&mut self) {
        if let Err(e) = std::fs::write(KNOB, self.previous.trim()) {
            eprintln!("could not restore {KNOB} to {}: {e}", self.previous.trim());
        }
    }
}
