//! Prometheus metrics, written in the text exposition format (version 0.0.4) by hand: a few
//! counters and histograms need no library.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets.
const LATENCY_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A histogram of durations.
#[derive(Debug)]
struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, duration: Duration) {
        let seconds = duration.as_secs_f64();
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            if seconds <= *bound {
                bucket.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(duration.as_micros() as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let separator = if labels.is_empty() { "" } else { "," };
        for (bound, bucket) in LATENCY_BUCKETS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{separator}le=\"{bound}\"}} {}",
                bucket.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{separator}le=\"+Inf\"}} {count}"
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braces} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// The server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    /// Answers by (endpoint, status).
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    prompt_tokens: AtomicU64,
    completion_tokens: AtomicU64,
    /// Completions, from the request's arrival to the end of the answer, by endpoint.
    chat_latency: Histogram,
    completions_latency: Histogram,
    time_to_first_token: Histogram,
    refreshes_ok: AtomicU64,
    refreshes_failed: AtomicU64,
    fresh_documents: AtomicU64,
    response_documents: AtomicU64,
    cancelled: AtomicU64,
    /// Fresh documents refused by the per-connection and the enclave-wide limit.
    attestations_refused_connection: AtomicU64,
    attestations_refused_enclave: AtomicU64,
    connections_active: AtomicU64,
    connections_refused: AtomicU64,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            prompt_tokens: AtomicU64::new(0),
            completion_tokens: AtomicU64::new(0),
            chat_latency: Histogram::new(),
            completions_latency: Histogram::new(),
            time_to_first_token: Histogram::new(),
            refreshes_ok: AtomicU64::new(0),
            refreshes_failed: AtomicU64::new(0),
            fresh_documents: AtomicU64::new(0),
            response_documents: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
            attestations_refused_connection: AtomicU64::new(0),
            attestations_refused_enclave: AtomicU64::new(0),
            connections_active: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
        }
    }

    pub(crate) fn count_request(&self, endpoint: &'static str, status: u16) {
        let mut requests = self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *requests.entry((endpoint, status)).or_insert(0) += 1;
    }

    pub(crate) fn count_tokens(&self, prompt: usize, completion: usize) {
        self.prompt_tokens
            .fetch_add(prompt as u64, Ordering::Relaxed);
        self.completion_tokens
            .fetch_add(completion as u64, Ordering::Relaxed);
    }

    /// A completion's total time; `chat` tells the endpoint.
    pub(crate) fn observe_latency(&self, chat: bool, duration: Duration) {
        if chat {
            self.chat_latency.observe(duration);
        } else {
            self.completions_latency.observe(duration);
        }
    }

    pub(crate) fn observe_first_token(&self, duration: Duration) {
        self.time_to_first_token.observe(duration);
    }

    pub(crate) fn count_refresh(&self, succeeded: bool) {
        if succeeded {
            self.refreshes_ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.refreshes_failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn count_fresh_document(&self) {
        self.fresh_documents.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_response_document(&self) {
        self.response_documents.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_cancelled(&self) {
        self.cancelled.fetch_add(1, Ordering::Relaxed);
    }

    /// A fresh document refused by the `scope` limit (`"connection"` or `"enclave"`).
    pub(crate) fn count_attestation_refused(&self, scope: &str) {
        let counter = if scope == "connection" {
            &self.attestations_refused_connection
        } else {
            &self.attestations_refused_enclave
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_opened(&self) {
        self.connections_active.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn connection_closed(&self) {
        self.connections_active.fetch_sub(1, Ordering::Relaxed);
    }

    pub(crate) fn count_connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    /// The text exposition, with the queue gauges read now.
    pub(crate) fn render(&self, queue_depth: usize, queue_capacity: usize) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP enclave_http_requests_total HTTP answers by endpoint and status.\n");
        out.push_str("# TYPE enclave_http_requests_total counter\n");
        {
            let requests = self
                .requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((endpoint, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "enclave_http_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}"
                );
            }
        }
        let counter = |out: &mut String, name: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {value}");
        };
        counter(
            &mut out,
            "enclave_prompt_tokens_total",
            "Prompt tokens of completed generations (tokens in).",
            self.prompt_tokens.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "enclave_completion_tokens_total",
            "Generated tokens (tokens out).",
            self.completion_tokens.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "enclave_generations_cancelled_total",
            "Generations cancelled because the client went away.",
            self.cancelled.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP enclave_completion_duration_seconds Completion time, from the request to the end of the answer.\n",
        );
        out.push_str("# TYPE enclave_completion_duration_seconds histogram\n");
        self.chat_latency.write(
            &mut out,
            "enclave_completion_duration_seconds",
            "endpoint=\"/v1/chat/completions\"",
        );
        self.completions_latency.write(
            &mut out,
            "enclave_completion_duration_seconds",
            "endpoint=\"/v1/completions\"",
        );
        out.push_str(
            "# HELP enclave_time_to_first_token_seconds Time from the request to the first generated text.\n",
        );
        out.push_str("# TYPE enclave_time_to_first_token_seconds histogram\n");
        self.time_to_first_token
            .write(&mut out, "enclave_time_to_first_token_seconds", "");
        out.push_str("# HELP enclave_queue_depth Generations accepted and not finished.\n");
        out.push_str("# TYPE enclave_queue_depth gauge\n");
        let _ = writeln!(out, "enclave_queue_depth {queue_depth}");
        out.push_str("# HELP enclave_queue_capacity Generations accepted at most before 429.\n");
        out.push_str("# TYPE enclave_queue_capacity gauge\n");
        let _ = writeln!(out, "enclave_queue_capacity {queue_capacity}");
        out.push_str(
            "# HELP enclave_attestation_refreshes_total Boot document refreshes by outcome.\n",
        );
        out.push_str("# TYPE enclave_attestation_refreshes_total counter\n");
        let _ = writeln!(
            out,
            "enclave_attestation_refreshes_total{{outcome=\"ok\"}} {}",
            self.refreshes_ok.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "enclave_attestation_refreshes_total{{outcome=\"error\"}} {}",
            self.refreshes_failed.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "enclave_attestation_fresh_documents_total",
            "Documents produced for /v1/attestation nonces.",
            self.fresh_documents.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "enclave_attestation_response_documents_total",
            "Per-response documents (x-attested-nonce).",
            self.response_documents.load(Ordering::Relaxed),
        );
        out.push_str(
            "# HELP enclave_attestation_rate_limited_total Fresh documents refused (429) by limit.\n",
        );
        out.push_str("# TYPE enclave_attestation_rate_limited_total counter\n");
        let _ = writeln!(
            out,
            "enclave_attestation_rate_limited_total{{limit=\"connection\"}} {}",
            self.attestations_refused_connection.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "enclave_attestation_rate_limited_total{{limit=\"enclave\"}} {}",
            self.attestations_refused_enclave.load(Ordering::Relaxed)
        );
        out.push_str("# HELP enclave_connections_active Connections open on the public port.\n");
        out.push_str("# TYPE enclave_connections_active gauge\n");
        let _ = writeln!(
            out,
            "enclave_connections_active {}",
            self.connections_active.load(Ordering::Relaxed)
        );
        counter(
            &mut out,
            "enclave_connections_refused_total",
            "Connections closed at once because max_connections were open.",
            self.connections_refused.load(Ordering::Relaxed),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_has_counters_gauges_and_cumulative_buckets() {
        let metrics = Metrics::new();
        metrics.count_request("/v1/chat/completions", 200);
        metrics.count_request("/v1/chat/completions", 200);
        metrics.count_request("/v1/completions", 429);
        metrics.count_tokens(10, 5);
        metrics.observe_latency(true, Duration::from_millis(30));
        metrics.observe_latency(true, Duration::from_secs(3));
        metrics.count_refresh(true);
        metrics.count_attestation_refused("connection");
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed();
        metrics.count_connection_refused();
        let text = metrics.render(2, 40);
        for line in [
            "enclave_http_requests_total{endpoint=\"/v1/chat/completions\",status=\"200\"} 2",
            "enclave_http_requests_total{endpoint=\"/v1/completions\",status=\"429\"} 1",
            "enclave_prompt_tokens_total 10",
            "enclave_completion_tokens_total 5",
            "enclave_completion_duration_seconds_bucket{endpoint=\"/v1/chat/completions\",le=\"0.025\"} 0",
            "enclave_completion_duration_seconds_bucket{endpoint=\"/v1/chat/completions\",le=\"0.05\"} 1",
            "enclave_completion_duration_seconds_bucket{endpoint=\"/v1/chat/completions\",le=\"5\"} 2",
            "enclave_completion_duration_seconds_bucket{endpoint=\"/v1/chat/completions\",le=\"+Inf\"} 2",
            "enclave_completion_duration_seconds_count{endpoint=\"/v1/chat/completions\"} 2",
            "enclave_queue_depth 2",
            "enclave_attestation_refreshes_total{outcome=\"ok\"} 1",
            "enclave_attestation_rate_limited_total{limit=\"connection\"} 1",
            "enclave_attestation_rate_limited_total{limit=\"enclave\"} 0",
            "enclave_connections_active 1",
            "enclave_connections_refused_total 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
    }
}
