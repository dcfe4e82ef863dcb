//! The running summary of a session, updated signal by signal (never
//! recomputed from the stored bytes) and kept with archived segments so
//! session listings need not decode spans.

use serde::{Deserialize, Serialize};

/// The user-facing root span of a session (a span without a parent).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootSpan {
    pub name: String,
    pub service: String,
    pub duration_ns: u64,
    pub failed: bool,
}

/// Per-service counts and latency.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceStats {
    pub name: String,
    pub spans: u64,
    pub errors: u64,
    pub total_duration_ns: u64,
    pub max_duration_ns: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub spans: u64,
    pub logs: u64,
    pub exemplars: u64,
    /// Error spans plus error logs (severity ≥ ERROR).
    pub errors: u64,
    /// Earliest and latest event time seen (Unix ns).
    pub first_unix_nano: Option<u64>,
    pub last_unix_nano: Option<u64>,
    pub root: Option<RootSpan>,
    /// Sorted by name. A small vector, not a map: sessions touch a handful
    /// of services and this is paid per live session.
    pub services: Vec<ServiceStats>,
}

impl Summary {
    pub fn observe_span(&mut self, service: &str, start: u64, end: u64, is_error: bool, root_name: Option<&str>) {
        let duration = end.saturating_sub(start);
        self.spans += 1;
        self.errors += u64::from(is_error);
        self.observe_time(start);
        self.observe_time(end.max(start));
        let stats = self.service_mut(service);
        stats.spans += 1;
        stats.errors += u64::from(is_error);
        stats.total_duration_ns = stats.total_duration_ns.saturating_add(duration);
        stats.max_duration_ns = stats.max_duration_ns.max(duration);
        if let Some(name) = root_name {
            // Several parentless spans (a flow of many traces): the longest
            // one is the user-facing request.
            let longer = self.root.as_ref().is_none_or(|r| duration > r.duration_ns);
            if longer {
                self.root = Some(RootSpan { name: name.to_owned(), service: service.to_owned(), duration_ns: duration, failed: is_error });
            }
        }
    }

    pub fn observe_log(&mut self, service: &str, time: u64, is_error: bool) {
        self.logs += 1;
        self.errors += u64::from(is_error);
        if time > 0 {
            self.observe_time(time);
        }
        self.service_mut(service).errors += u64::from(is_error);
    }

    pub fn observe_exemplar(&mut self, service: &str, time: u64) {
        self.exemplars += 1;
        if time > 0 {
            self.observe_time(time);
        }
        self.service_mut(service);
    }

    /// Folds another summary in (trace unification merges sessions).
    pub fn merge(&mut self, other: &Summary) {
        self.spans += other.spans;
        self.logs += other.logs;
        self.exemplars += other.exemplars;
        self.errors += other.errors;
        for t in [other.first_unix_nano, other.last_unix_nano].into_iter().flatten() {
            self.observe_time(t);
        }
        if let Some(root) = &other.root {
            if self.root.as_ref().is_none_or(|r| root.duration_ns > r.duration_ns) {
                self.root = Some(root.clone());
            }
        }
        for s in &other.services {
            let mine = self.service_mut(&s.name);
            mine.spans += s.spans;
            mine.errors += s.errors;
            mine.total_duration_ns = mine.total_duration_ns.saturating_add(s.total_duration_ns);
            mine.max_duration_ns = mine.max_duration_ns.max(s.max_duration_ns);
        }
    }

    pub fn duration_ms(&self) -> f64 {
        match (self.first_unix_nano, self.last_unix_nano) {
            (Some(a), Some(b)) => b.saturating_sub(a) as f64 / 1e6,
            _ => 0.0,
        }
    }

    fn observe_time(&mut self, t: u64) {
        self.first_unix_nano = Some(self.first_unix_nano.map_or(t, |f| f.min(t)));
        self.last_unix_nano = Some(self.last_unix_nano.map_or(t, |l| l.max(t)));
    }

    pub fn service(&self, name: &str) -> Option<&ServiceStats> {
        self.services.binary_search_by(|s| s.name.as_str().cmp(name)).ok().map(|i| &self.services[i])
    }

    pub fn service_names(&self) -> impl Iterator<Item = &str> {
        self.services.iter().map(|s| s.name.as_str())
    }

    fn service_mut(&mut self, service: &str) -> &mut ServiceStats {
        let i = match self.services.binary_search_by(|s| s.name.as_str().cmp(service)) {
            Ok(i) => i,
            Err(i) => {
                self.services.insert(i, ServiceStats { name: service.to_owned(), ..Default::default() });
                i
            }
        };
        &mut self.services[i]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_errors_times_and_root() {
        let mut s = Summary::default();
        s.observe_span("api", 100, 1_100, false, Some("GET /checkout"));
        s.observe_span("db", 200, 300, true, None);
        s.observe_log("db", 250, true);
        s.observe_exemplar("api", 150);
        assert_eq!((s.spans, s.logs, s.exemplars, s.errors), (2, 1, 1, 2));
        assert_eq!((s.first_unix_nano, s.last_unix_nano), (Some(100), Some(1_100)));
        assert_eq!(s.root.as_ref().map(|r| r.name.as_str()), Some("GET /checkout"));
        assert_eq!(s.service("db").map(|d| d.errors), Some(2));
        assert_eq!(s.service_names().collect::<Vec<_>>(), vec!["api", "db"]);
        assert_eq!(s.services.len(), 2);
    }

    #[test]
    fn merge_is_the_sum() {
        let mut a = Summary::default();
        a.observe_span("api", 100, 200, false, None);
        let mut b = Summary::default();
        b.observe_span("web", 50, 500, true, Some("root"));
        a.merge(&b);
        assert_eq!(a.spans, 2);
        assert_eq!(a.first_unix_nano, Some(50));
        assert_eq!(a.root.map(|r| r.service), Some("web".to_owned()));
    }
}
