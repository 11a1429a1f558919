//! `[probes.*]`, in the main file or a drop-in file.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::Check;
use crate::config::diag::Source;
use crate::config::list;
use crate::config::model::*;
use crate::config::raw::RawProbe;
use crate::message::Template;

impl Check<'_> {
    pub(in crate::config) fn probe(
        &mut self,
        src: &Source,
        name: &str,
        p: &RawProbe,
        senders: &[String],
        seeds: &[String],
        bounce_mailboxes: &[(String, String)],
    ) -> Option<Probe> {
        let k = |f: &str| format!("probes.{name}.{f}");
        let mut ok = true;
        if !senders.contains(p.sender.get_ref()) {
            ok = false;
            self.problems.push(src.at_value(
                &p.sender,
                &k("sender"),
                format!(
                    "unknown sender {:?}; defined senders: {}",
                    p.sender.get_ref(),
                    list(senders)
                ),
            ));
        }
        if p.seeds.get_ref().is_empty() {
            ok = false;
            self.problems.push(src.at_value(
                &p.seeds,
                &k("seeds"),
                "a probe needs at least one seed",
            ));
        }
        for s in p.seeds.get_ref() {
            if !seeds.contains(s.get_ref()) {
                ok = false;
                self.problems.push(src.at_value(
                    s,
                    &k("seeds"),
                    format!(
                        "unknown seed {:?}; defined seeds: {}",
                        s.get_ref(),
                        list(seeds)
                    ),
                ));
            }
            // Bounces in a bounce mailbox are trusted to end runs; probe
            // mail landing there would make any seed's mail look like one.
            if let Some((sender, _)) = bounce_mailboxes.iter().find(|(_, b)| b == s.get_ref()) {
                ok = false;
                self.problems.push(src.at_value(
                    s,
                    &k("seeds"),
                    format!(
                        "seed {:?} is the bounce mailbox of sender {sender:?}; probes cannot send to it",
                        s.get_ref()
                    ),
                ));
            }
        }
        let every = p.every.get_ref().0;
        let timeout = p.timeout.as_ref().map_or(every, |t| t.get_ref().0);
        if every < Duration::from_secs(1) {
            ok = false;
            self.problems
                .push(src.at_value(&p.every, &k("every"), "interval must be at least 1s"));
        }
        if let Some(t) = &p.timeout {
            if t.get_ref().0.is_zero() {
                ok = false;
                self.problems.push(src.at_value(
                    t,
                    &k("timeout"),
                    "timeout must be greater than zero",
                ));
            } else if t.get_ref().0 > every {
                // Allowed (greylisting can take longer than a sensible interval),
                // but then several probes of this kind are in flight at once.
                self.warnings.push(src.at_value(t, &k("timeout"), format!(
                    "timeout {} is longer than the interval {}; several probes will be in flight at once",
                    t.get_ref(),
                    p.every.get_ref()
                )));
            }
        }
        let here = src
            .path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let template_path = here.join(p.template.get_ref());
        let template = match Template::load(&template_path) {
            Ok(t) => Some(Arc::new(t)),
            Err(e) => {
                self.problems
                    .push(src.at_value(&p.template, &k("template"), e.to_string()));
                None
            }
        };
        let code_length = match &p.code_length {
            None => 6,
            Some(n) if (4..=12).contains(n.get_ref()) => usize::from(*n.get_ref()),
            Some(n) => {
                self.problems.push(src.at_value(
                    n,
                    &k("code_length"),
                    "code_length must be 4 to 12 digits",
                ));
                ok = false;
                6
            }
        };
        if let Some(b) = &p.burst {
            if !(1..=20).contains(b.get_ref()) {
                ok = false;
                self.problems
                    .push(src.at_value(b, &k("burst"), "burst must be 1 to 20 sends"));
            }
        }
        let template = template?;
        ok.then(|| Probe {
            template,
            product: p.product.clone().unwrap_or_else(|| "Example".to_string()),
            code_length,
            code_validity: p.code_validity.map_or(Duration::from_secs(600), |d| d.0),
            probe_header: p.probe_header.unwrap_or(false),
            burst: p.burst.as_ref().map_or(1, |b| *b.get_ref()),
            burst_spacing: p.burst_spacing.map_or(Duration::from_secs(10), |d| d.0),
            sender: p.sender.get_ref().clone(),
            seeds: p
                .seeds
                .get_ref()
                .iter()
                .map(|s| s.get_ref().clone())
                .collect(),
            every,
            timeout,
            defined_in: src.path.clone(),
        })
    }
}
