//! The node's background tasks, and the signal that stops them.

use ollystack_cluster::net::Acceptor;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The node's background tasks (servers, sweeps) in the order they
/// started, and the signal that stops them.
pub(super) struct Background {
    stop: watch::Receiver<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn new(stop: watch::Receiver<bool>) -> Self {
        Self { stop, tasks: Vec::new() }
    }

    /// The tasks, in the order they started.
    pub fn into_tasks(self) -> Vec<JoinHandle<()>> {
        self.tasks
    }

    /// Tells when shutdown is signalled.
    pub fn stop(&self) -> watch::Receiver<bool> {
        self.stop.clone()
    }

    /// Resolves once shutdown is signalled.
    pub fn signal(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut stop = self.stop.clone();
        async move {
            let _ = stop.wait_for(|stop| *stop).await;
        }
    }

    pub fn spawn(&mut self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.push(tokio::spawn(task));
    }

    pub fn push(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// Serves `router` on `listener` until shutdown.
    pub fn serve_http(&mut self, listener: Box<dyn Acceptor>, router: axum::Router) {
        let stop = self.signal();
        self.spawn(ollystack_cluster::net::serve_http(listener, router, ollystack_cluster::net::HttpBounds::default(), stop));
    }
}
