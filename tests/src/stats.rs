//! Small figures the benchmark drivers share: a percentile of sorted samples and a numeric
//! field of the server's `tracing` log lines.
//!
//! It does not format tables or decide what a driver reports.

/// The value at quantile `p` (0.0–1.0) of `sorted` (ascending), by the nearest rank; NaN when
/// there are no samples.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// The integer value of the field `name=` in a log line (`prompt_tokens=1234`); a field is
/// preceded by a space, so `tokens` does not match `prompt_tokens`.
pub fn log_field(line: &str, name: &str) -> Option<usize> {
    let key = format!(" {name}=");
    let at = line.find(&key)? + key.len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v = [1.0, 2.0, 3.0, 4.0, 5.0];
        assert_eq!(percentile(&v, 0.5), 3.0);
        assert_eq!(percentile(&v, 0.95), 5.0);
        assert!(percentile(&[], 0.5).is_nan());
    }

    #[test]
    fn log_fields_match_whole_names() {
        let l = "INFO generation finished generation=3 prompt_tokens=1234 evaluated_tokens=5";
        assert_eq!(log_field(l, "prompt_tokens"), Some(1234));
        assert_eq!(log_field(l, "tokens"), None);
        assert_eq!(log_field(l, "evaluated_tokens"), Some(5));
    }
}
