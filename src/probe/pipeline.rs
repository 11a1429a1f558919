//! The probe pipeline assembled: the recorder, the state that outlives
//! reloads (senders on hold, OAuth token sources), and per config
//! generation the watchers and schedulers. `mailcanary run` and `mailcanary
//! probe` both start it here.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::recorder::{self, Channels};
use super::scheduler::{self, Holds, Senders};
use crate::config::Config;
use crate::inbox::oauth::TokenSources;
use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

/// A running recorder and what lives as long as it.
pub struct Pipeline {
    pub channels: Channels,
    /// Senders an app asked to wait (429 Retry-After) until a time.
    pub holds: Holds,
    /// OAuth token sources by seed.
    pub tokens: TokenSources,
}

impl Pipeline {
    /// Start the recorder on `tracker`; it runs until `stop`.
    pub async fn start(
        config: watch::Receiver<Arc<Config>>,
        store: Store,
        metrics: Arc<Metrics>,
        tracker: &TaskTracker,
        stop: CancellationToken,
    ) -> Result<Pipeline, StoreError> {
        let channels = recorder::start(config, store, metrics, tracker, stop).await?;
        Ok(Pipeline {
            channels,
            holds: Holds::default(),
            tokens: TokenSources::default(),
        })
    }

    /// Start watching every seed `config`'s probes use, until `stop`.
    pub fn watch(&self, config: &Config, tracker: &TaskTracker, stop: &CancellationToken) {
        crate::inbox::spawn_watchers(config, &self.channels.watch, &self.tokens, tracker, stop);
    }

    /// Start one scheduler per probe of `config`, until `stop`.
    pub fn schedule(&self, config: &Arc<Config>, tracker: &TaskTracker, stop: &CancellationToken) {
        scheduler::spawn_schedulers(config, &self.senders(config), &self.channels, tracker, stop);
    }

    /// The senders' clients for `config`.
    pub fn senders(&self, config: &Config) -> Arc<Senders> {
        Arc::new(Senders::new(config, &self.holds))
    }
}
