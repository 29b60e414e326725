//! The scenario file as written: a serde model of the TOML. Unknown keys are errors, and every value
//! that parses text (durations, rates, counts) fails with the position of that value.

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::units::{CountValue, DurationText, Ramp, RateText};

/// A scenario file. See the README for every key.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    /// `"builtin"` (the embedded server, started in-process) or a `ws://` / `wss://` URL.
    #[serde(default = "default_target")]
    pub target: Spanned<String>,
    #[serde(default = "default_protocol")]
    pub protocol: Spanned<String>,
    /// Request path for every group that does not set its own; defaults to the URL's path.
    pub path: Option<Spanned<String>>,
    /// The emitting phase, after the ramp.
    pub duration: DurationText,
    /// Connect the clients over this time (`"5s"`) or at this rate (`"500/s"`).
    #[serde(default = "default_ramp")]
    pub ramp: Ramp,
    /// After the last emit, how long to wait for events still in flight.
    #[serde(default = "default_drain")]
    pub drain: DurationText,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: DurationText,
    /// Seeds the order in which clients connect; the run id is printed so a run can be repeated.
    pub seed: Option<u64>,
    #[serde(rename = "group")]
    pub groups: Vec<Group>,
    #[serde(rename = "expect", default)]
    pub expects: Vec<Expect>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: Spanned<String>,
    pub clients: CountValue,
    pub path: Option<Spanned<String>>,
    #[serde(default)]
    pub on_connect: Vec<Spanned<Step>>,
    #[serde(default)]
    pub emit: Vec<Emit>,
}

/// One step after connecting: send a message (`emit`), or pause (`wait`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub emit: Option<String>,
    pub data: Option<Spanned<toml::Value>>,
    #[serde(default)]
    pub binary: bool,
    pub wait: Option<DurationText>,
}

/// A stream of events a client sends on an open-model schedule.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Emit {
    pub event: Spanned<String>,
    pub data: Option<Spanned<toml::Value>>,
    /// Events per client, e.g. `"5/s"`.
    pub rate: RateText,
    #[serde(default)]
    pub binary: bool,
    #[serde(default)]
    pub stamp: StampMode,
}

/// Where the tracking stamp goes in a tracked event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StampMode {
    /// A field in JSON object payloads, a prefix in anything else.
    #[default]
    Auto,
    Field,
    Prefix,
    /// Send the payload exactly as written; the event cannot be tracked.
    None,
}

/// What must come back, and the latency metric it feeds.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// Metric name; defaults to the event name.
    pub name: Option<Spanned<String>>,
    pub event: Spanned<String>,
    #[serde(default = "default_from")]
    pub from: Spanned<String>,
    /// An arrival later than this after its scheduled send counts as late.
    pub within: Option<DurationText>,
}

fn spanned<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
}
fn default_target() -> Spanned<String> {
    spanned("builtin".into())
}
fn default_protocol() -> Spanned<String> {
    spanned("ws".into())
}
fn default_from() -> Spanned<String> {
    spanned("self".into())
}
fn default_ramp() -> Ramp {
    Ramp::Over(std::time::Duration::ZERO)
}
fn default_drain() -> DurationText {
    DurationText(std::time::Duration::from_secs(2))
}
fn default_connect_timeout() -> DurationText {
    DurationText(std::time::Duration::from_secs(10))
}
