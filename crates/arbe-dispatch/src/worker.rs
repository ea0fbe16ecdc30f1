//! Workers: each claims a job under a lease, renews it while the run goes on (noticing cancel
//! requests and a lost lease), and runs it. The recovery sweep hands jobs whose lease ran out
//! back to the queue, at start-up and on a timer.

use std::time::Duration;

use arbe_store::{Claim, Lease};
use tokio::{sync::watch, task::JoinHandle, time::Instant};

use crate::{Dispatcher, Stop, run};

/// This process's running workers and sweep.
#[derive(Debug)]
pub struct Workers {
    shutdown: watch::Sender<bool>,
    handles: Vec<JoinHandle<()>>,
    dispatcher: Dispatcher,
}

/// Whether a process's workers are still running, for a readiness check. Cheap to clone.
#[derive(Clone, Debug)]
pub struct WorkersHealth {
    tasks: std::sync::Arc<Vec<tokio::task::AbortHandle>>,
    shutdown: watch::Receiver<bool>,
}

impl WorkersHealth {
    /// True while every worker and the sweep run and no drain has begun.
    pub fn running(&self) -> bool {
        !*self.shutdown.borrow() && self.tasks.iter().all(|task| !task.is_finished())
    }
}

impl Workers {
    /// A handle that tells whether these workers still run.
    pub fn health(&self) -> WorkersHealth {
        WorkersHealth {
            tasks: std::sync::Arc::new(self.handles.iter().map(JoinHandle::abort_handle).collect()),
            shutdown: self.shutdown.subscribe(),
        }
    }

    /// Stops taking jobs, cancels the runs in flight (they end `cancelled`), and waits up to
    /// `drain` for them to finish writing.
    pub async fn shutdown(self, drain: Duration) {
        let _ = self.shutdown.send(true);
        for (_, stop) in self.dispatcher.inner.running.lock().unwrap_or_else(|e| e.into_inner()).values() {
            crate::request_cancel(stop);
        }
        let all = futures_util::future::join_all(self.handles);
        let _ = tokio::time::timeout(drain, all).await;
    }

    /// Stops taking jobs and gives the runs in flight up to `grace` to finish. Those still
    /// running then stop where they are, writing nothing more; their jobs go back to the queue
    /// once their leases lapse, and another worker (or this process's next start) takes them
    /// over. A restart never cancels a user's work: [`Dispatcher::cancel`] is what cancels.
    pub async fn drain(self, grace: Duration) {
        let _ = self.shutdown.send(true);
        let aborts: Vec<_> = self.handles.iter().map(JoinHandle::abort_handle).collect();
        if tokio::time::timeout(grace, futures_util::future::join_all(self.handles)).await.is_err() {
            tracing::info!("runs still in flight after the drain period: their jobs are handed back to the queue");
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
        }
    }

    /// Stops everything at once, writing nothing more: what a crash does. Jobs in flight stay
    /// leased until their lease runs out, then another worker takes them over.
    pub fn abort(self) {
        for handle in &self.handles {
            handle.abort();
        }
    }
}

pub(crate) fn start(d: Dispatcher) -> Workers {
    let (shutdown, _) = watch::channel(false);
    let mut handles = Vec::new();
    let sweep = {
        let d = d.clone();
        let mut down = shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                match d.inner.store.requeue_expired_jobs().await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(jobs = n, "recovery sweep requeued jobs whose lease ran out");
                        d.inner.appended.notify_waiters();
                    }
                    Err(err) => tracing::warn!(error = %err, "recovery sweep failed"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(d.inner.config.sweep_every) => {}
                    _ = down.changed() => return,
                }
            }
        })
    };
    handles.push(sweep);
    for n in 0..d.inner.config.workers.max(1) {
        let d = d.clone();
        let mut down = shutdown.subscribe();
        let owner = format!("{}-{n}", d.inner.config.worker_id);
        handles.push(tokio::spawn(async move {
            loop {
                if *down.borrow() {
                    return;
                }
                // Enabled before the claim, so a post between the claim and the wait wakes it.
                let notified = d.inner.appended.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                // The lease the claim sets runs from no earlier than now.
                let asked = Instant::now();
                match d.inner.store.claim_job(&owner, d.inner.config.lease).await {
                    Ok(Some(claim)) => {
                        // Its own task, so a panic in a run ends that run, not this worker.
                        let id = claim.id;
                        let task = tokio::spawn(process(d.clone(), claim, asked));
                        let _abort = AbortOnDrop(task.abort_handle());
                        if let Err(err) = task.await
                            && err.is_panic()
                        {
                            tracing::error!(job = %id, "a run panicked; its job is retried once its lease runs out");
                            d.inner.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                        }
                    }
                    Ok(None) => {
                        tokio::select! {
                            _ = notified => {}
                            _ = tokio::time::sleep(d.inner.config.poll) => {}
                            _ = down.changed() => return,
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "claiming a job failed");
                        tokio::time::sleep(d.inner.config.poll).await;
                    }
                }
            }
        }));
    }
    Workers { shutdown, handles, dispatcher: d }
}

/// Aborts a task when dropped: a worker aborted (a crash, in tests) takes its run with it.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs one claimed job with its heartbeat beside it. The lease was last set no earlier than
/// `renewed`; once `lease − heartbeat` has passed since the last renewal that succeeded, the
/// run stops (`Stop::Lost`) before another worker could take the job over.
async fn process(d: Dispatcher, job: Claim, renewed: Instant) {
    let d = &d;
    let (stop_tx, stop_rx) = watch::channel(if job.cancel_requested { Stop::Cancel } else { Stop::No });
    let stop_tx = std::sync::Arc::new(stop_tx);
    d.inner.running.lock().unwrap_or_else(|e| e.into_inner()).insert(job.id, (job.thread_id, stop_tx.clone()));
    let heartbeat = {
        let stop_tx = stop_tx.clone();
        let inner = d.inner.clone();
        let id = job.id;
        let claim = job.clone();
        let margin = inner.config.lease.saturating_sub(inner.config.heartbeat);
        async move {
            let config = &inner.config;
            let mut renewed = renewed;
            loop {
                let give_up = renewed + margin;
                tokio::time::sleep_until(give_up.min(Instant::now() + config.heartbeat)).await;
                let asked = Instant::now();
                if asked >= give_up {
                    break;
                }
                match tokio::time::timeout_at(give_up, inner.store.renew_lease(&claim, config.lease)).await {
                    Ok(Ok(Lease::Held { cancel_requested })) => {
                        renewed = asked;
                        if cancel_requested {
                            crate::request_cancel(&stop_tx);
                        }
                    }
                    Ok(Ok(Lease::Lost)) => {
                        tracing::warn!(job = %id, "lost the lease: another worker owns this job now");
                        stop_tx.send_replace(Stop::Lost);
                        std::future::pending::<()>().await;
                    }
                    Ok(Err(err)) => tracing::warn!(job = %id, error = %err, "renewing the lease failed"),
                    Err(_) => {}
                }
            }
            tracing::warn!(
                job = %id,
                "no lease renewal succeeded for {margin:?}: stopping the run before another worker can take the job"
            );
            stop_tx.send_replace(Stop::Lost);
            std::future::pending::<()>().await;
        }
    };
    let id = job.id;
    tokio::select! {
        () = run::run_job(d, job, stop_tx.clone(), stop_rx) => {}
        () = heartbeat => {}
    }
    d.inner.running.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
}
