//! Where series live, and how they are written out.
//!
//! The `prometheus` crate's vectors keep each child's labels as protobuf
//! label pairs and copy every one of them, then sort, on each scrape: at
//! 10,000 series that was 37 ms a scrape (`cargo bench --bench exposition`).
//! Here the children are kept sorted by their label values, and a scrape
//! walks them once, rendering each label set into one reused buffer. (A
//! rendered label text kept per child cost ~90 bytes a series: 6 MiB of
//! the daemon's 74 MiB with 1,000 seeds, whose `auth_result` alone was
//! 36,000 series; rendering at scrape time cost ~0.2 µs a series: 3.99 ms against
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
pub struct Family<V> {
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

impl<V: Default + Send + Sync + 'static> Family<V> {
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
    /// values escaped; `extra` is one more pair (a state set's state) put
    /// at its place among them.
    fn label_text(&self, key: &str, extra: Option<Extra<'_>>, out: &mut String) {
        let pair = |name: &str, value: &str, out: &mut String| {
            if !out.is_empty() {
                out.push(',');
            }
            out.push_str(name);
            out.push_str("=\"");
            escape(value, true, out);
            out.push('"');
        };
        for (n, (v, &i)) in key.split('\0').zip(self.sorted.iter()).enumerate() {
            if let Some(e) = extra.filter(|e| e.at == n) {
                pair(e.name, e.value, out);
            }
            pair(self.labels[i], v, out);
        }
        if let Some(e) = extra.filter(|e| e.at == self.sorted.len()) {
            pair(e.name, e.value, out);
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

impl<V: Value> Family<V> {
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
            self.label_text(key, None, &mut labels);
            value.write(name, &labels, out);
        }
    }
}

/// A label pair added to a child's own when its text is written.
#[derive(Clone, Copy)]
struct Extra<'a> {
    /// Position among the child's labels in name order.
    at: usize,
    name: &'a str,
    value: &'a str,
}

/// A state set: per label set, one series for each state of a closed
/// list, the current state 1 and every other 0 (written as gauges, as the
/// text format has no state sets). The state is the last label declared.
///
/// A child keeps only the current state's position and a scrape writes
/// its lines: a seed's authentication verdicts, 36 series, are 4 children
/// (with 1,000 seeds the state sets were 50,000 of 71,000 children).
pub struct StateSet {
    /// Every label but the state; a child's value is the current state's
    /// position in the list ([`NO_STATE`] when it is none of them).
    inner: Family<Current>,
    /// The state label's name.
    label: &'static str,
    /// How many of the other labels sort before the state label.
    at: usize,
    /// The closed list of states, fixed by the first [`StateSet::set`].
    states: std::sync::OnceLock<States>,
}

#[derive(Default)]
struct Current(std::sync::atomic::AtomicUsize);

/// A current state that is not in the list: every line is 0.
const NO_STATE: usize = usize::MAX;

struct States {
    /// In the callers' order.
    names: Box<[&'static str]>,
    /// Positions in `names`, sorted by name: the order lines are written in.
    sorted: Box<[usize]>,
}

impl StateSet {
    /// `labels` in declaration order, the state last.
    pub fn new(labels: &'static [&'static str]) -> Self {
        let (label, others) = match labels.split_last() {
            Some((l, others)) => (*l, others),
            None => ("state", labels),
        };
        Self {
            inner: Family::new(others),
            label,
            at: others.iter().filter(|o| **o < label).count(),
            states: std::sync::OnceLock::new(),
        }
    }

    /// Makes `current` the state of the series with these values (every
    /// label but the state, in declaration order). `states` is the closed
    /// list, the same at every call: the first call fixes it, and a
    /// different list is the caller's bug, logged and not exported.
    pub fn set(
        &self,
        values: &[&str],
        states: impl IntoIterator<Item = &'static str>,
        current: &str,
    ) {
        let list: Vec<&'static str> = states.into_iter().collect();
        let known = match self.states.get() {
            Some(known) => known,
            // Only the first list is checked: every later one must equal it.
            // An empty list would export a family without samples, and a
            // repeated state two series of one name and labels.
            None if list.is_empty() || (1..list.len()).any(|i| list[..i].contains(&list[i])) => {
                tracing::error!(label = self.label, states = ?list, "state set given an empty list or a repeated state; not exported");
                return;
            }
            None => self.states.get_or_init(|| {
                let mut sorted: Vec<usize> = (0..list.len()).collect();
                sorted.sort_by_key(|&i| list[i]);
                States {
                    names: list.as_slice().into(),
                    sorted: sorted.into(),
                }
            }),
        };
        if *known.names != *list {
            tracing::error!(label = self.label, states = ?list, "state set given another list of states; not exported");
            return;
        }
        let at = list.iter().position(|s| *s == current).unwrap_or(NO_STATE);
        self.inner
            .with_label_values(values)
            .0
            .store(at, std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes the series of every state for these values (every label
    /// but the state).
    pub fn remove_label_values(&self, values: &[&str]) -> Result<(), LabelError> {
        self.inner.remove_label_values(values)
    }

    /// Removes every child with a label `stale` picks (name, value).
    pub fn prune(&self, stale: &dyn Fn(&str, &str) -> bool) {
        self.inner.prune(stale);
    }

    /// Appends the family's lines, in the order of label values by label
    /// name (as if every state were a child of its own): children that
    /// agree on the labels sorting before the state are written as a
    /// group, state by state.
    pub fn write(&self, name: &str, help: &str, out: &mut String) {
        let Some(states) = self.states.get() else {
            return;
        };
        let children = read(&self.inner.children);
        if children.is_empty() {
            return;
        }
        header(name, help, "gauge", out);
        // The labels sorting before the state: the key up to its `at`-th NUL.
        let prefix = |key: &str| match self.at.checked_sub(1) {
            None => 0,
            Some(n) => key.match_indices('\0').nth(n).map_or(key.len(), |(i, _)| i),
        };
        let mut labels = String::new();
        let mut group: Vec<(&str, usize)> = Vec::new();
        let mut rest = children.iter().peekable();
        while let Some((key, current)) = rest.next() {
            let p = &key[..prefix(key)];
            group.clear();
            group.push((key, current.0.load(std::sync::atomic::Ordering::Relaxed)));
            while let Some((k, c)) = rest.next_if(|(k, _)| &k[..prefix(k)] == p) {
                group.push((k, c.0.load(std::sync::atomic::Ordering::Relaxed)));
            }
            for &state in states.sorted.iter() {
                for &(key, current) in &group {
                    labels.clear();
                    let extra = Extra {
                        at: self.at,
                        name: self.label,
                        value: states.names[state],
                    };
                    self.inner.label_text(key, Some(extra), &mut labels);
                    let on = i64::from(current == state);
                    sample(out, name, "", &labels, None, Number::Int(on.into()));
                }
            }
        }
    }

    /// Every series as a child of its own: the values in declaration
    /// order (the state last) and the value, for the tests that compare
    /// with the `prometheus` crate.
    #[cfg(test)]
    pub fn children(&self) -> Vec<(Vec<String>, Arc<IntGauge>)> {
        let Some(states) = self.states.get() else {
            return Vec::new();
        };
        let mut all = Vec::new();
        for (values, current) in self.inner.children() {
            let current = current.0.load(std::sync::atomic::Ordering::Relaxed);
            for (i, state) in states.names.iter().enumerate() {
                let mut values = values.clone();
                values.push(state.to_string());
                let g = IntGauge::default();
                g.set(i64::from(i == current));
                all.push((values, Arc::new(g)));
            }
        }
        all
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
