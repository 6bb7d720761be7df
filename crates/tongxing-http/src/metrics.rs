//! Prometheus metrics, kept by hand: a few labelled counters and one latency histogram per
//! route. A mutex per family is plenty at the request rates of one node.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    verdicts: Mutex<BTreeMap<(String, String), u64>>,
    samples: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn request(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        *self.requests.lock().expect("metrics lock").entry((method.into(), route.into(), status)).or_default() += 1;
        let mut lat = self.latency.lock().expect("metrics lock");
        let h = lat.entry(route.into()).or_default();
        let secs = elapsed.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    /// One check's verdict and its first (deciding) reason.
    pub fn verdict(&self, verdict: &str, reason: &str) {
        *self.verdicts.lock().expect("metrics lock").entry((verdict.into(), reason.into())).or_default() += 1;
    }

    pub fn sample(&self, outcome: &str, n: u64) {
        *self.samples.lock().expect("metrics lock").entry(outcome.into()).or_default() += n;
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP tongxing_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE tongxing_http_requests_total counter\n");
        for ((m, r, s), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "tongxing_http_requests_total{{method=\"{m}\",route=\"{r}\",status=\"{s}\"}} {n}");
        }
        out.push_str("# HELP tongxing_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE tongxing_http_request_duration_seconds histogram\n");
        for (r, h) in self.latency.lock().expect("metrics lock").iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "tongxing_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ =
                writeln!(out, "tongxing_http_request_duration_seconds_bucket{{route=\"{r}\",le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "tongxing_http_request_duration_seconds_sum{{route=\"{r}\"}} {}", h.sum);
            let _ = writeln!(out, "tongxing_http_request_duration_seconds_count{{route=\"{r}\"}} {}", h.count);
        }
        out.push_str("# HELP tongxing_checks_total Checkpoint decisions by verdict and deciding reason.\n");
        out.push_str("# TYPE tongxing_checks_total counter\n");
        for ((v, r), n) in self.verdicts.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "tongxing_checks_total{{verdict=\"{v}\",reason=\"{r}\"}} {n}");
        }
        out.push_str("# HELP tongxing_samples_total Submitted samples by outcome.\n");
        out.push_str("# TYPE tongxing_samples_total counter\n");
        for (o, n) in self.samples.lock().expect("metrics lock").iter() {
            let _ = writeln!(out, "tongxing_samples_total{{outcome=\"{o}\"}} {n}");
        }
        out
    }
}
