//! Where series live, and how they are written out.
//!
//! The `prometheus` crate's vectors keep each child's labels as protobuf
//! label pairs and copy every one of them, then sort, on each scrape: at
//! 10,000 series that was 37 ms a scrape (`cargo bench --bench exposition`).
//! Here the children are kept sorted by their label values, and a scrape
//! walks them once, rendering each label set into one reused buffer. (A
//! rendered label text kept per child cost ~90 bytes a series: 6 MiB of
//! the daemon's 74 MiB with 1,000 seeds, whose state sets alone are 36,000
//! series; rendering at scrape time costs ~0.2 µs a series: 3.99 ms against
//! 2.19 ms at 8,097 series, `cargo bench --bench exposition`.) The
//! values themselves are the `prometheus` crate's atomics. The output is the
//! text format the crate's `TextEncoder` writes, byte for byte (the tests
//! below encode the same values with it and compare).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, RwLock};

use prometheus::core::{Atomic, AtomicF64, AtomicI64, AtomicU64};

/// One series' value, as a family stores it.
pub trait Value: Default + Send + Sync + 'static {
    /// The `# TYPE` word of a family of these.
    const TYPE: &'static str;
    /// Append the sample line(s): `name{labels} value\n`. `labels` is the
    /// child's rendered label set without braces (empty when it has none).
    fn write(&self, name: &str, labels: &str, out: &mut String);
    /// The value as the `prometheus` crate's data model, for the tests that
    /// compare the output with the crate's encoder.
    #[cfg(test)]
    fn proto(&self) -> (prometheus::proto::MetricType, prometheus::proto::Metric);
}

/// A monotonic count.
#[derive(Default)]
pub struct Counter(AtomicU64Cell);

/// An integer that goes up and down.
#[derive(Default)]
pub struct IntGauge(AtomicI64Cell);

/// A float that goes up and down.
#[derive(Default)]
pub struct Gauge(AtomicF64Cell);

// The crate's atomics have no `Default`; these give them one (zero).
struct AtomicU64Cell(AtomicU64);
struct AtomicI64Cell(AtomicI64);
struct AtomicF64Cell(AtomicF64);

impl Default for AtomicU64Cell {
    fn default() -> Self {
        Self(AtomicU64::new(0))
    }
}
impl Default for AtomicI64Cell {
    fn default() -> Self {
        Self(AtomicI64::new(0))
    }
}
impl Default for AtomicF64Cell {
    fn default() -> Self {
        Self(AtomicF64::new(0.0))
    }
}

impl Counter {
    pub fn inc(&self) {
        self.0 .0.inc_by(1);
    }
    pub fn inc_by(&self, n: u64) {
        self.0 .0.inc_by(n);
    }
    pub fn get(&self) -> u64 {
        self.0 .0.get()
    }
}

impl IntGauge {
    pub fn set(&self, v: i64) {
        self.0 .0.set(v);
    }
    pub fn get(&self) -> i64 {
        self.0 .0.get()
    }
}

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0 .0.set(v);
    }
    pub fn get(&self) -> f64 {
        self.0 .0.get()
    }
}

impl Value for Counter {
    const TYPE: &'static str = "counter";
    fn write(&self, name: &str, labels: &str, out: &mut String) {
        sample(out, name, "", labels, None, Number::Int(self.get().into()));
    }
    #[cfg(test)]
    fn proto(&self) -> (prometheus::proto::MetricType, prometheus::proto::Metric) {
        let mut c = prometheus::proto::Counter::default();
        c.set_value(self.get() as f64);
        let mut m = prometheus::proto::Metric::default();
        m.set_counter(c);
        (prometheus::proto::MetricType::COUNTER, m)
    }
}

impl Value for IntGauge {
    const TYPE: &'static str = "gauge";
    fn write(&self, name: &str, labels: &str, out: &mut String) {
        sample(out, name, "", labels, None, Number::Int(self.get().into()));
    }
    #[cfg(test)]
    fn proto(&self) -> (prometheus::proto::MetricType, prometheus::proto::Metric) {
        gauge_proto(self.get() as f64)
    }
}

impl Value for Gauge {
    const TYPE: &'static str = "gauge";
    fn write(&self, name: &str, labels: &str, out: &mut String) {
        sample(out, name, "", labels, None, Number::Float(self.get()));
    }
    #[cfg(test)]
    fn proto(&self) -> (prometheus::proto::MetricType, prometheus::proto::Metric) {
        gauge_proto(self.get())
    }
}

#[cfg(test)]
fn gauge_proto(v: f64) -> (prometheus::proto::MetricType, prometheus::proto::Metric) {
    let mut g = prometheus::proto::Gauge::default();
    g.set_value(v);
    let mut m = prometheus::proto::Metric::default();
    m.set_gauge(g);
    (prometheus::proto::MetricType::GAUGE, m)
}

/// A histogram over [`super::LATENCY_BUCKETS`] (the only buckets in use).
pub struct Histogram {
    /// Per-bucket (not cumulative) counts; the last is above every bound.
    counts: [AtomicU64Cell; BUCKETS + 1],
    sum: AtomicF64Cell,
}

const BUCKETS: usize = super::LATENCY_BUCKETS.len();

impl Default for Histogram {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64Cell::default()),
            sum: AtomicF64Cell::default(),
        }
    }
}

impl Histogram {
    pub fn observe(&self, v: f64) {
        let i = super::LATENCY_BUCKETS
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(BUCKETS);
        self.counts[i].0.inc_by(1);
        self.sum.0.inc_by(v);
    }
}

impl Value for Histogram {
    const TYPE: &'static str = "histogram";
    fn write(&self, name: &str, labels: &str, out: &mut String) {
        // The count is the buckets' total, so a scrape that races an
        // observation never shows a count below its +Inf bucket.
        let mut cumulative = 0u64;
        for (i, bound) in bucket_labels().iter().enumerate() {
            cumulative += self.counts[i].0.get();
            sample(
                out,
                name,
                "_bucket",
                labels,
                Some(bound),
                Number::Int(cumulative.into()),
            );
        }
        cumulative += self.counts[BUCKETS].0.get();
        sample(
            out,
            name,
            "_bucket",
            labels,
            Some("+Inf"),
            Number::Int(cumulative.into()),
        );
        sample(
            out,
            name,
            "_sum",
            labels,
            None,
            Number::Float(self.sum.0.get()),
        );
        sample(
            out,
            name,
            "_count",
            labels,
            None,
            Number::Int(cumulative.into()),
        );
    }
    #[cfg(test)]
    fn proto(&self) -> (prometheus::proto::MetricType, prometheus::proto::Metric) {
        let mut cumulative = 0;
        let buckets = super::LATENCY_BUCKETS
            .iter()
            .zip(&self.counts)
            .map(|(bound, n)| {
                cumulative += n.0.get();
                let mut b = prometheus::proto::Bucket::default();
                b.set_upper_bound(*bound);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect();
        let mut h = prometheus::proto::Histogram::default();
        h.set_bucket(buckets);
        h.set_sample_count(cumulative + self.counts[BUCKETS].0.get());
        h.set_sample_sum(self.sum.0.get());
        let mut m = prometheus::proto::Metric::default();
        m.set_histogram(h);
        (prometheus::proto::MetricType::HISTOGRAM, m)
    }
}

/// The `le` values of the bucket bounds, as `f64`'s `Display` writes them.
fn bucket_labels() -> &'static [String; BUCKETS] {
    static LABELS: std::sync::OnceLock<[String; BUCKETS]> = std::sync::OnceLock::new();
    LABELS.get_or_init(|| std::array::from_fn(|i| super::LATENCY_BUCKETS[i].to_string()))
}

/// A sample value. The text format writes every value as a float; an
/// integer below 2^53 is exactly that float, whose `Display` is the
/// integer's digits, so integers skip the float formatting.
enum Number {
    Int(i128),
    Float(f64),
}

fn sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &str,
    le: Option<&str>,
    value: Number,
) {
    out.push_str(name);
    out.push_str(suffix);
    match (labels.is_empty(), le) {
        (true, None) => {}
        (true, Some(le)) => {
            out.push_str("{le=\"");
            out.push_str(le);
            out.push_str("\"}");
        }
        (false, None) => {
            out.push('{');
            out.push_str(labels);
            out.push('}');
        }
        (false, Some(le)) => {
            out.push('{');
            out.push_str(labels);
            out.push_str(",le=\"");
            out.push_str(le);
            out.push_str("\"}");
        }
    }
    out.push(' ');
    // Writing to a String cannot fail.
    let _ = match value {
        Number::Int(i) if i.unsigned_abs() < 1 << 53 => write!(out, "{i}"),
        Number::Int(i) => write!(out, "{}", i as f64),
        Number::Float(f) if f.is_nan() => write!(out, "NaN"),
        Number::Float(f) if f.is_infinite() => {
            write!(out, "{}", if f > 0.0 { "+Inf" } else { "-Inf" })
        }
        Number::Float(f) => write!(out, "{f}"),
    };
    out.push('\n');
}

/// Escapes a label value (`\`, newline and `"`) or help text (`\` and
/// newline), as the text format requires.
fn escape(v: &str, quote: bool, out: &mut String) {
    // Nearly every value needs no escape: copy it whole (a scrape escapes
    // every label value of every series).
    if !v
        .bytes()
        .any(|b| b == b'\\' || b == b'\n' || (quote && b == b'"'))
    {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quote => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// The family's metadata lines.
pub fn header(name: &str, help: &str, kind: &str, out: &mut String) {
    out.push_str("# HELP ");
    out.push_str(name);
    out.push(' ');
    escape(help, false, out);
    out.push_str("\n# TYPE ");
    out.push_str(name);
    out.push(' ');
    out.push_str(kind);
    out.push('\n');
}

/// A labelled family: its children by label values.
pub struct Family<V: Value> {
    /// Label names in declaration order (the order callers pass values in).
    labels: &'static [&'static str],
    /// Positions of `labels` in name order: the text format and the
    /// children's order follow label names sorted, as the crate did.
    sorted: Box<[usize]>,
    /// Keyed by the values in name order joined by NUL, which sorts below
    /// every other character: the map's order is the order of the value
    /// tuples.
    children: RwLock<BTreeMap<Box<str>, Arc<V>>>,
}

/// Why a family refused label values: only a caller's mistake.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    /// The number of values differs from the number of labels.
    #[error("{got} label values for {want} labels")]
    Arity { got: usize, want: usize },
    /// No child has these values.
    #[error("no series with these label values")]
    Missing,
}

impl<V: Value> Family<V> {
    pub fn new(labels: &'static [&'static str]) -> Self {
        let mut sorted: Vec<usize> = (0..labels.len()).collect();
        sorted.sort_by_key(|&i| labels[i]);
        Self {
            labels,
            sorted: sorted.into(),
            children: RwLock::new(BTreeMap::new()),
        }
    }

    fn key(&self, values: &[&str]) -> Result<String, LabelError> {
        if values.len() != self.labels.len() {
            return Err(LabelError::Arity {
                got: values.len(),
                want: self.labels.len(),
            });
        }
        let mut key = String::with_capacity(values.iter().map(|v| v.len() + 1).sum());
        for (n, &i) in self.sorted.iter().enumerate() {
            if n > 0 {
                key.push('\0');
            }
            key.push_str(values[i]);
        }
        Ok(key)
    }

    /// The child with these values (in declaration order), made at zero
    /// if it is new. A wrong number of values is a bug in the caller: it is
    /// logged and gets a value that is not exported, never a panic.
    pub fn with_label_values(&self, values: &[&str]) -> Arc<V> {
        let key = match self.key(values) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, labels = ?self.labels, "series not exported");
                return Arc::default();
            }
        };
        if let Some(v) = read(&self.children).get(key.as_str()) {
            return v.clone();
        }
        write(&self.children).entry(key.into()).or_default().clone()
    }

    /// Appends `a="x",b="y"` for a child's key: label names in name order,
    /// values escaped.
    fn label_text(&self, key: &str, out: &mut String) {
        for (n, (v, &i)) in key.split('\0').zip(self.sorted.iter()).enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(self.labels[i]);
            out.push_str("=\"");
            escape(v, true, out);
            out.push('"');
        }
    }

    /// Removes the child with these values.
    pub fn remove_label_values(&self, values: &[&str]) -> Result<(), LabelError> {
        let key = self.key(values)?;
        write(&self.children)
            .remove(key.as_str())
            .map(|_| ())
            .ok_or(LabelError::Missing)
    }

    /// Removes every child with a label `stale` picks (name, value).
    pub fn prune(&self, stale: &dyn Fn(&str, &str) -> bool) {
        write(&self.children).retain(|key, _| {
            !key.split('\0')
                .zip(self.sorted.iter())
                .any(|(v, &i)| stale(self.labels[i], v))
        });
    }

    /// Appends the family's children (nothing if it has none).
    pub fn write(&self, name: &str, help: &str, out: &mut String) {
        let children = read(&self.children);
        if children.is_empty() {
            return;
        }
        header(name, help, V::TYPE, out);
        let mut labels = String::new();
        for (key, value) in children.iter() {
            labels.clear();
            self.label_text(key, &mut labels);
            value.write(name, &labels, out);
        }
    }

    /// Every child: its values in declaration order, and its value.
    pub fn children(&self) -> Vec<(Vec<String>, Arc<V>)> {
        read(&self.children)
            .iter()
            .map(|(key, value)| {
                let mut values = vec![String::new(); self.labels.len()];
                for (v, &i) in key.split('\0').zip(self.sorted.iter()) {
                    values[i] = v.to_string();
                }
                (values, value.clone())
            })
            .collect()
    }
}

/// A family without labels: exactly one series.
#[derive(Default)]
pub struct Single<V: Value>(Arc<V>);

impl<V: Value> std::ops::Deref for Single<V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.0
    }
}

impl<V: Value> Single<V> {
    pub fn write(&self, name: &str, help: &str, out: &mut String) {
        header(name, help, V::TYPE, out);
        self.0.write(name, "", out);
    }

    /// The series' value.
    pub fn value(&self) -> Arc<V> {
        self.0.clone()
    }
}

// A panic while a lock is held leaves plain numbers behind: still usable.
fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
