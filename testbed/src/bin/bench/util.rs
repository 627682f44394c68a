//! Small tools of the bench: progress lines, medians and percentiles, sizes
//! and the time stamp of the backup names.

use std::time::Instant;

/// Progress on stderr, each line with the seconds since the start.
pub struct Log {
    /// When the run started.
    pub start: Instant,
}

impl Log {
    /// A log whose clock starts now.
    pub fn start() -> Log {
        Log { start: Instant::now() }
    }

    /// Prints one progress line.
    pub fn say(&self, msg: impl AsRef<str>) {
        eprintln!("[bench {:>7.1}s] {}", self.start.elapsed().as_secs_f64(), msg.as_ref());
    }
}

/// The median of `v` (NaN when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// The nearest-rank `p`th percentile of an ascending `sorted` (NaN when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

/// Bytes as whole megabytes (10^6), e.g. `1057 MB`.
pub fn mb(b: u64) -> String {
    format!("{:.0} MB", b as f64 / 1e6)
}

/// `YYYYmmdd_HHMMSS` (UTC) without a date crate.
pub fn chrono_like_stamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // civil from days (Howard Hinnant)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}{m:02}{d:02}_{:02}{:02}{:02}", rem / 3600, (rem % 3600) / 60, rem % 60)
}
