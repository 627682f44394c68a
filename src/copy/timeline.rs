//! Where a copy's time goes: each step's wall-clock start and length, logged
//! once per job (`job timings`) for operators and read by `scripts/bench`.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// One step of a copy.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// What ran: `download`, `schema`, `data`, `indexes`, `neutralize`, …
    pub name: &'static str,
    /// When it started.
    pub start: SystemTime,
    /// How long it took.
    pub took: Duration,
}

/// The steps of one copy, in the order they were recorded.
#[derive(Debug, Default)]
pub struct Timeline {
    steps: Mutex<Vec<Step>>,
}

impl Timeline {
    /// Records step `name`, which started at `start` (an [`Instant`]) and ends now.
    pub fn since(&self, name: &'static str, start: Instant) {
        let took = start.elapsed();
        self.record(name, SystemTime::now() - took, took);
    }

    /// Records step `name`, started at `start`, lasting `took`.
    pub fn record(&self, name: &'static str, start: SystemTime, took: Duration) {
        self.steps.lock().unwrap().push(Step { name, start, took });
    }

    /// Runs `work` as step `name`.
    pub async fn time<T>(&self, name: &'static str, work: impl std::future::Future<Output = T>) -> T {
        let start = Instant::now();
        let out = work.await;
        self.since(name, start);
        out
    }

    /// The steps recorded so far.
    pub fn steps(&self) -> Vec<Step> {
        self.steps.lock().unwrap().clone()
    }
}

/// `download=1.203s@1764719400.125 schema=0.210s@1764719401.330 …`: each
/// step's length and its start in seconds since the Unix epoch.
impl fmt::Display for Timeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps().iter().enumerate() {
            let at = step.start.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64();
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{}={:.3}s@{at:.3}", step.name, step.took.as_secs_f64())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_print_as_name_length_and_start() {
        let t = Timeline::default();
        t.record("download", UNIX_EPOCH + Duration::from_millis(1_500), Duration::from_millis(250));
        t.record("data", UNIX_EPOCH + Duration::from_secs(2), Duration::from_secs(3));
        assert_eq!(t.to_string(), "download=0.250s@1.500 data=3.000s@2.000");
    }
}
