//! The analyzer's second source: a Prometheus server (or anything that speaks its HTTP
//! query API) that scrapes the collector's `--metrics`. Load and memory come from
//! `query_range`, checkpoints and events from the collector's mark gauges; the window
//! draws them as it draws the SQLite history (docs/analyzer.md, *From Prometheus*).
//!
//! What the server answers is untrusted: a body is read up to [`BODY_LIMIT`], parsed
//! into typed values (a sample that is not a number is an error, never a panic), and
//! every failure is one sentence naming the server.

mod reader;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::Analyzer;

impl Analyzer {
    /// Reads the collector's metrics from the Prometheus server at `url` (`http://…`)
    /// instead of a history file: load, memory, checkpoints and events, drawn the same
    /// way. Nothing is asked here; a server that does not answer shows its error in the
    /// window.
    pub fn open_prometheus(url: &str) -> Result<Analyzer, String> {
        let client = Client::new(url)?;
        let url = client.url().to_owned();
        let ctx = std::sync::Arc::new(std::sync::OnceLock::new());
        let worker = reader::spawn(client, std::sync::Arc::clone(&ctx));
        Ok(Analyzer::with_worker(
            url.clone().into(),
            ctx,
            worker,
            Some(url),
        ))
    }

    /// The Prometheus server read, if the analyzer reads one instead of a history file.
    pub fn prometheus(&self) -> Option<&str> {
        self.prometheus.as_deref()
    }
}

/// The largest answer read (bytes): about 4 M points.
pub const BODY_LIMIT: u64 = 64 << 20;
/// How long one query may take.
pub const TIMEOUT: Duration = Duration::from_secs(30);
/// The most points one series of a `query_range` may have (Prometheus's own limit is
/// 11 000; the plot asks for about two a pixel column).
pub const MAX_POINTS: i64 = 10_000;

/// A Prometheus server's query API.
#[derive(Debug)]
pub struct Client {
    /// `http://host:port` and any path prefix, without a trailing `/`.
    base: String,
    agent: ureq::Agent,
}

/// One series of an answer: its labels and its points (unix seconds, value).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// The labels (the metric's name under `__name__` when the answer keeps it).
    pub labels: BTreeMap<String, String>,
    /// The points, oldest first.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The label `name`, or "".
    pub fn label(&self, name: &str) -> &str {
        self.labels.get(name).map_or("", String::as_str)
    }
}

/// The envelope of every answer of the API.
#[derive(Debug, Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<String>,
}

/// `data` of a query answer.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct QueryData {
    result_type: String,
    result: Vec<RawSeries>,
}

/// A series as the API writes it: `value` (vector) or `values` (matrix) as
/// `[seconds, "number"]` pairs.
#[derive(Debug, Deserialize)]
struct RawSeries {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    value: Option<(f64, String)>,
    #[serde(default)]
    values: Option<Vec<(f64, String)>>,
}

/// A number as Prometheus writes it: decimal, `NaN`, `+Inf`, `-Inf`.
fn number(text: &str) -> Result<f64, String> {
    match text {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        t => t
            .parse::<f64>()
            .map_err(|_| format!("a sample value is not a number: {:.40}", t)),
    }
}

/// At most `n` characters of `text` (for error sentences that quote the server).
fn short(text: &str, n: usize) -> String {
    let t: String = text.chars().take(n).collect();
    if t.len() < text.len() { t + "…" } else { t }
}

impl Client {
    /// A client of the server at `url` (`http://host:port`, maybe with a path prefix).
    /// Nothing is asked yet.
    pub fn new(url: &str) -> Result<Client, String> {
        let base = url.trim().trim_end_matches('/');
        let rest = if let Some(r) = base.strip_prefix("http://") {
            r
        } else if base.starts_with("https://") {
            return Err(format!(
                "{base}: this build speaks plain http only; reach an https Prometheus through a local proxy"
            ));
        } else {
            return Err(format!(
                "{base}: a Prometheus address starts with http:// (e.g. http://127.0.0.1:9090)"
            ));
        };
        let host = rest.split('/').next().unwrap_or("");
        if host.is_empty() || base.contains(['?', '#', ' ']) {
            return Err(format!(
                "{base}: not a Prometheus address (http://host:port[/prefix])"
            ));
        }
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .proxy(None)
            .build();
        Ok(Client {
            base: base.to_owned(),
            agent: ureq::Agent::new_with_config(config),
        })
    }

    /// The address asked.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET {base}/api/v1/{what}?params`: the `data` of a successful answer.
    fn get(&self, what: &str, params: &[(&str, String)]) -> Result<serde_json::Value, String> {
        let url = format!("{}/api/v1/{what}", self.base);
        let fail = |e: &dyn std::fmt::Display| format!("Prometheus at {}: {e}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .query_pairs(params.iter().map(|(k, v)| (*k, v.as_str())))
            .call()
            .map_err(|e| fail(&e))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_string()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => fail(&format!(
                    "the answer is larger than {} MiB",
                    BODY_LIMIT >> 20
                )),
                e => fail(&format!("reading the answer: {e}")),
            })?;
        let env: Envelope = serde_json::from_str(&body).map_err(|e| {
            fail(&format!(
                "the answer (HTTP {status}) is not the query API's JSON ({e}): {}",
                short(body.trim(), 80)
            ))
        })?;
        if env.status != "success" {
            let why = env.error.as_deref().unwrap_or("no reason given");
            return Err(fail(&format!("HTTP {status}: {}", short(why, 200))));
        }
        env.data
            .ok_or_else(|| fail(&"a successful answer without data"))
    }

    /// The series of a query answer of `kind` (`vector` or `matrix`).
    fn series(&self, data: serde_json::Value, kind: &str) -> Result<Vec<Series>, String> {
        let d: QueryData = serde_json::from_value(data)
            .map_err(|e| format!("Prometheus at {}: an unexpected answer: {e}", self.base))?;
        if d.result_type != kind {
            return Err(format!(
                "Prometheus at {}: a {} where a {kind} was expected",
                self.base,
                short(&d.result_type, 20)
            ));
        }
        d.result
            .into_iter()
            .map(|r| {
                let raw = r.values.unwrap_or_default().into_iter().chain(r.value);
                let points = raw
                    .map(|(t, v)| Ok((t, number(&v)?)))
                    .collect::<Result<Vec<_>, String>>()
                    .map_err(|e| format!("Prometheus at {}: {e}", self.base))?;
                Ok(Series {
                    labels: r.metric,
                    points,
                })
            })
            .collect()
    }

    /// `query` evaluated at `time` (unix seconds): one point per series.
    pub fn instant(&self, query: &str, time: f64) -> Result<Vec<Series>, String> {
        let data = self.get(
            "query",
            &[("query", query.to_owned()), ("time", format!("{time:.3}"))],
        )?;
        self.series(data, "vector")
    }

    /// `query` evaluated at `start`, `start + step` … up to `end` (unix seconds).
    pub fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<Vec<Series>, String> {
        let step = step.max(1);
        if (end - start) / step > MAX_POINTS {
            return Err(format!(
                "Prometheus at {}: {} points a series asked for, at most {MAX_POINTS}",
                self.base,
                (end - start) / step
            ));
        }
        let data = self.get(
            "query_range",
            &[
                ("query", query.to_owned()),
                ("start", start.to_string()),
                ("end", end.to_string()),
                ("step", step.to_string()),
            ],
        )?;
        self.series(data, "matrix")
    }

    /// The label sets of the series `matcher` selects within `start..=end`.
    pub fn label_sets(
        &self,
        matcher: &str,
        start: i64,
        end: i64,
    ) -> Result<Vec<BTreeMap<String, String>>, String> {
        let data = self.get(
            "series",
            &[
                ("match[]", matcher.to_owned()),
                ("start", start.to_string()),
                ("end", end.to_string()),
            ],
        )?;
        serde_json::from_value(data).map_err(|e| {
            format!(
                "Prometheus at {}: an unexpected series list: {e}",
                self.base
            )
        })
    }
}

/// The value of the only (or the first) point of an instant answer, if any.
pub fn scalar(series: &[Series]) -> Option<f64> {
    series
        .first()
        .and_then(|s| s.points.first())
        .map(|p| p.1)
        .filter(|v| v.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert!(Client::new("http://127.0.0.1:9090/").is_ok());
        assert_eq!(
            Client::new("http://127.0.0.1:9090/prom/").map(|c| c.url().to_owned()),
            Ok("http://127.0.0.1:9090/prom".to_owned())
        );
        for bad in [
            "127.0.0.1:9090",
            "ftp://x",
            "http://",
            "http://a?b",
            "https://x",
        ] {
            let e = Client::new(bad).expect_err(bad);
            assert!(e.starts_with(bad.trim_end_matches('/')), "{e}");
        }
    }

    #[test]
    fn numbers_and_answers() {
        assert!(number("NaN").is_ok_and(f64::is_nan));
        assert_eq!(number("+Inf"), Ok(f64::INFINITY));
        assert_eq!(number("1e3"), Ok(1000.0));
        assert!(number("12abc").is_err());
        let c = Client::new("http://127.0.0.1:1").expect("client");
        let data = serde_json::json!({
            "resultType": "matrix",
            "result": [{"metric": {"node": "2"}, "values": [[10, "1.5"], [11.5, "2"]]}]
        });
        let s = c.series(data, "matrix").expect("matrix");
        assert_eq!(s[0].label("node"), "2");
        assert_eq!(s[0].points, vec![(10.0, 1.5), (11.5, 2.0)]);
        let wrong = serde_json::json!({"resultType": "vector", "result": []});
        assert!(c.series(wrong, "matrix").is_err());
        let bad = serde_json::json!({
            "resultType": "vector",
            "result": [{"metric": {}, "value": [10, "x"]}]
        });
        let e = c.series(bad, "vector").expect_err("not a number");
        assert!(e.contains("not a number"), "{e}");
        let junk = serde_json::json!({"resultType": 3});
        assert!(c.series(junk, "vector").is_err());
    }
}
