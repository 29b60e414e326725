//! `[[expect]]`: what must arrive, from whom, to whom, by when; each a latency metric and a
//! tracked stream.

use std::collections::{HashMap, HashSet};

use crate::scenario::spanned::Spanned;

use super::{Errors, ExpectPlan, Origin, check_identifier};
use crate::metrics::ConnectPhase;
use crate::protocol::pointer::JsonPointer;
use crate::scenario::ScenarioError;
use crate::scenario::model::{Expect, Scenario};

pub(super) fn compile(
    scenario: &Scenario,
    is_sio: bool,
    err: Errors,
) -> Result<Vec<ExpectPlan>, ScenarioError> {
    let mut expects: Vec<ExpectPlan> = Vec::new();
    // Looked up by hash, so that validation stays linear in groups and expects.
    let groups = GroupIndex::of(scenario);
    let mut names: HashSet<String> = HashSet::new();
    let mut events: HashSet<&str> = HashSet::new();
    // The groups that emit each event, in order, each once.
    let mut emitters: HashMap<&str, Vec<u16>> = HashMap::new();
    for (i, group) in scenario.groups.iter().enumerate() {
        for emit in &group.emit {
            let groups = emitters.entry(emit.event.get_ref().as_str()).or_default();
            if groups.last() != Some(&(i as u16)) {
                groups.push(i as u16);
            }
        }
    }
    for expect in &scenario.expects {
        let origin = match expect.from.get_ref().as_str() {
            "self" => Origin::Own,
            "server" => server_origin(expect, is_sio, err)?,
            _ => Origin::Group(groups.index(scenario, &expect.from, err)?),
        };
        let server_only = [
            &expect.seq,
            &expect.timestamp,
            &expect.timestamp_unit,
            &expect.stream,
        ];
        let misplaced = server_only.into_iter().flatten().next();
        if let (false, Some(key)) = (matches!(origin, Origin::Server { .. }), misplaced) {
            return Err(err.of(
                key,
                "`seq`, `timestamp`, `timestamp_unit` and `stream` are for from = \"server\"",
            ));
        }
        let to = receivers(scenario, &groups, expect, &origin, err)?;
        let (name, name_span) = match &expect.name {
            Some(n) => (n.get_ref().clone(), n.span()),
            None => (expect.event.get_ref().clone(), expect.event.span()),
        };
        check_identifier(&name)
            .map_err(|m| err.at(name_span.clone(), format!("metric name: {m}")))?;
        if ConnectPhase::of_metric(&name).is_some() {
            return Err(err.at(
                name_span,
                format!(
                    "metric name `{name}` is volley's own (a phase of connect); give this expect another `name`"
                ),
            ));
        }
        if name == "connect" || !names.insert(name.clone()) {
            return Err(err.at(
                name_span,
                format!("metric name `{name}` is already used; give this expect another `name`"),
            ));
        }
        let event = expect.event.get_ref();
        if !events.insert(event.as_str()) {
            return Err(err.of(
                &expect.event,
                format!("event `{event}` is already tracked by another expect"),
            ));
        }
        let emitters = emitters.get(event.as_str()).map_or(&[][..], Vec::as_slice);
        let emitted = match origin {
            Origin::Group(g) => emitters.contains(&g),
            _ => !emitters.is_empty(),
        };
        if !emitted && !matches!(origin, Origin::Server { .. }) {
            return Err(err.of(
                &expect.event,
                format!("no group emits event `{event}`, so nothing can be expected back"),
            ));
        }
        expects.push(ExpectPlan {
            name,
            event: event.clone(),
            within: expect.within.map(|d| d.0),
            origin,
            to,
        });
    }
    Ok(expects)
}

/// `from = "server"`: where the sequence number (and the send time) is in each event.
fn server_origin(expect: &Expect, is_sio: bool, err: Errors) -> Result<Origin, ScenarioError> {
    let seq = expect.seq.as_ref().ok_or_else(|| {
        err.of(
            &expect.from,
            "from = \"server\" needs `seq`, the JSON pointer to the server's sequence number (e.g. \"/seq\")",
        )
    })?;
    let pointer = |text: &Spanned<String>| match JsonPointer::parse(text.get_ref()) {
        // Socket.IO: into the first argument, after the event name.
        Some(p) if is_sio => Ok(p.under_index(1)),
        Some(p) => Ok(p),
        None => Err(err.of(
            text,
            format!(
                "`{}` is not a JSON pointer: it starts with `/`, e.g. \"/seq\"",
                text.get_ref()
            ),
        )),
    };
    let seq = pointer(seq)?;
    let timestamp = expect.timestamp.as_ref().map(pointer).transpose()?;
    let key = expect.stream.as_ref().map(pointer).transpose()?;
    let timestamp_us = match expect.timestamp_unit.as_ref() {
        None => 1000,
        Some(unit) => match unit.get_ref().as_str() {
            "ms" => 1000,
            "us" => 1,
            other => {
                return Err(err.of(
                    unit,
                    format!("timestamp_unit `{other}`: use \"ms\" or \"us\""),
                ));
            }
        },
    };
    let event_prefix = is_sio.then(|| {
        let name = serde_json::to_string(expect.event.get_ref()).expect("a string serializes");
        format!("[{name}").into_bytes()
    });
    Ok(Origin::Server {
        seq,
        key,
        timestamp,
        timestamp_us,
        event_prefix,
    })
}

/// `to`: the receiving groups of a group's or the server's events (every group unless named);
/// none for echoes.
fn receivers(
    scenario: &Scenario,
    groups: &GroupIndex<'_>,
    expect: &Expect,
    origin: &Origin,
    err: Errors,
) -> Result<Vec<u16>, ScenarioError> {
    match (origin, &expect.to) {
        (Origin::Own, Some(to)) => Err(err.at(
            to.span(),
            "`to` is for a group's or the server's events; an echo goes back to its sender",
        )),
        (Origin::Own, None) => Ok(Vec::new()),
        (_, Some(to)) => {
            let mut indices = Vec::new();
            for name in to.get_ref() {
                indices.push(groups.index(scenario, name, err)?);
            }
            if indices.is_empty() {
                return Err(err.at(to.span(), "`to` names no group"));
            }
            Ok(indices)
        }
        (_, None) => Ok((0..scenario.groups.len() as u16).collect()),
    }
}

/// The index of the group `name` names, or an error at the name listing the groups there are.
/// Group indices by name (the first group of a name: a second is an error of its own).
struct GroupIndex<'a>(HashMap<&'a str, u16>);

impl<'a> GroupIndex<'a> {
    fn of(scenario: &'a Scenario) -> GroupIndex<'a> {
        let mut map = HashMap::with_capacity(scenario.groups.len());
        for (i, g) in scenario.groups.iter().enumerate() {
            map.entry(g.name.get_ref().as_str()).or_insert(i as u16);
        }
        GroupIndex(map)
    }

    fn index(
        &self,
        scenario: &Scenario,
        name: &Spanned<String>,
        err: Errors,
    ) -> Result<u16, ScenarioError> {
        self.0.get(name.get_ref().as_str()).copied().ok_or_else(|| {
            let known: Vec<&str> = scenario
                .groups
                .iter()
                .map(|g| g.name.get_ref().as_str())
                .collect();
            err.of(
                name,
                format!(
                    "no group `{}`: use \"self\", \"server\" or one of {}",
                    name.get_ref(),
                    known.join(", ")
                ),
            )
        })
    }
}
