//! The sampling task: the collector at an interval that `+`/`-` change through a watch
//! channel. It runs apart from the UI loop, which only receives finished snapshots.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::collect::Collector;
use super::sample::Snapshot;

/// Runs until `send` returns false (the receiver is gone). The first sample is taken at once,
/// so rates are ready after one interval.
pub fn spawn<F>(
    mut collector: Collector,
    mut interval: watch::Receiver<Duration>,
    send: F,
) -> tokio::task::JoinHandle<()>
where
    F: Fn(Snapshot) -> bool + Send + 'static,
{
    tokio::spawn(async move {
        loop {
            let period = *interval.borrow_and_update();
            // A VMM slower than the period must not stack calls up behind itself.
            collector.api_timeout =
                (period * 4 / 5).clamp(Duration::from_millis(200), Duration::from_secs(2));
            let mut ticker = tokio::time::interval(period);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {
                        let snap = collector.sample().await;
                        if !send(snap) {
                            return;
                        }
                    }
                    changed = interval.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        break;
                    }
                }
            }
        }
    })
}
