//! Live metrics, for the tools a user already watches everything else with: a Prometheus text
//! endpoint to scrape (`--metrics-listen`, in [`listen`]) and Prometheus remote-write pushes
//! (`--prometheus-write`, encoded in [`remote_write`]). Whoever has figures (a run's coordinator
//! once a second; `serve` and `inspect` on each scrape) builds a [`Snapshot`]; the endpoint renders
//! it as text ([`text`]), the pusher as a remote-write request. Nothing here is on a client's path.

pub mod histogram;
pub mod listen;
pub mod remote_write;
pub mod text;

pub use histogram::Buckets;

/// One moment's series: families of samples, each sample with its own labels on top of the
/// snapshot's common ones (run id, scenario, shard).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub common: Vec<(&'static str, String)>,
    pub families: Vec<Family>,
}

/// Samples of one metric name.
#[derive(Debug, Clone, PartialEq)]
pub struct Family {
    /// The full name: counters end in `_total`, histograms are the base of `_bucket`, `_sum`
    /// and `_count`.
    pub name: String,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Vec<(&'static str, String)>,
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Number(f64),
    Histogram(Buckets),
}

impl Snapshot {
    pub fn new(common: Vec<(&'static str, String)>) -> Snapshot {
        Snapshot {
            common,
            families: Vec::new(),
        }
    }

    pub fn counter(
        &mut self,
        name: &str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        n: u64,
    ) {
        self.add(name, help, Kind::Counter, labels, Value::Number(n as f64));
    }

    pub fn gauge(
        &mut self,
        name: &str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        v: f64,
    ) {
        self.add(name, help, Kind::Gauge, labels, Value::Number(v));
    }

    pub fn histogram(
        &mut self,
        name: &str,
        help: &'static str,
        labels: &[(&'static str, &str)],
        buckets: Buckets,
    ) {
        self.add(
            name,
            help,
            Kind::Histogram,
            labels,
            Value::Histogram(buckets),
        );
    }

    /// Adds a sample to the family of that name, which is made when it is not the last one
    /// (the samples of a family are added one after another).
    fn add(
        &mut self,
        name: &str,
        help: &'static str,
        kind: Kind,
        labels: &[(&'static str, &str)],
        value: Value,
    ) {
        let sample = Sample {
            labels: labels.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            value,
        };
        match self.families.last_mut() {
            Some(family) if family.name == name => family.samples.push(sample),
            _ => self.families.push(Family {
                name: name.to_owned(),
                help,
                kind,
                samples: vec![sample],
            }),
        }
    }

    /// The value of the sample of `name` whose labels include `labels` (tests and the printout).
    pub fn number(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let family = self.families.iter().find(|f| f.name == name)?;
        family.samples.iter().find_map(|s| {
            let matches = labels
                .iter()
                .all(|(k, v)| s.labels.iter().any(|(sk, sv)| sk == k && sv == v));
            match (&s.value, matches) {
                (Value::Number(n), true) => Some(*n),
                _ => None,
            }
        })
    }
}
