//! Queries on a cluster: [`ClusterBackend`] answers the API from whichever
//! node holds the data.
//!
//! * A session: its ring owner answers (live actors, segments waiting to
//!   flush, storage). When the ID is an alias (a trace-derived ID whose
//!   trace joined an explicit session), the owner of the explicit ID is
//!   asked too. With the embedded store, finished segments stay on the node
//!   that flushed them (an earlier owner, before a ring change), so every
//!   other ring member is asked as well and the segments merged (the query
//!   builders de-duplicate); with ClickHouse, storage is shared and the
//!   owner's answer is whole. If a node that may hold data is unreachable,
//!   the answer says so (`partial`), naming the node.
//! * The session of a trace: the trace's home (owner of its derived ID)
//!   holds the binding.
//! * Listings (sessions, exemplars): every ring member is asked and the
//!   answers merged; a member that does not answer is skipped and logged.
//! * Window aggregates (per-incident RCA, analyze): every ring member
//!   aggregates what it holds and the aggregates are merged (they merge
//!   exactly); a member that does not answer makes the answer partial.

use std::collections::HashMap;
use std::sync::Arc;

use ollystack_cluster::NodeId;
use ollystack_proto::cluster::{query_reply::Answer, query_request::Query, QueryRequest, SessionPageQuery};

use super::convert::{hits_from_pb, paged_from_pb};
use super::{Cluster, ClusterError};
use crate::correlate;
use crate::model::{CorrelationId, TenantId, TraceId};
use crate::query::{
    collect_window, Counts, ExemplarFilter, ExemplarHit, Page, PagedSession, QueryBackend, QueryError, SessionFilter, SessionListItem,
    SessionListing,
};
use crate::rca::incident::{Collected, WindowQuery};
use crate::session::NodeQueries;

/// The API's backend on a cluster node.
pub struct ClusterBackend {
    cluster: Arc<Cluster>,
    local: Arc<NodeQueries>,
    /// Finished segments are in storage every node reads (ClickHouse):
    /// only owners need asking.
    shared_storage: bool,
}

impl std::fmt::Debug for ClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterBackend").finish_non_exhaustive()
    }
}

impl ClusterBackend {
    pub fn new(cluster: Arc<Cluster>, local: Arc<NodeQueries>, shared_storage: bool) -> Self {
        Self { cluster, local, shared_storage }
    }

    async fn ask(&self, node: NodeId, tenant: &TenantId, query: Query) -> Result<ollystack_proto::cluster::QueryReply, ClusterError> {
        let mut client = self.cluster.client(node)?;
        let mut request = tonic::Request::new(QueryRequest { tenant_id: tenant.as_str().to_owned(), query: Some(query), routed: true });
        request.set_timeout(self.cluster.rpc_timeout());
        match tokio::time::timeout(self.cluster.rpc_timeout(), client.query(request)).await {
            Ok(Ok(reply)) => {
                let mut reply = reply.into_inner();
                // This node asked the members it knows; `node` knows of a membership change it
                // has not applied (a lagging node): someone may not have been asked.
                if reply.partial.is_empty() && reply.membership_index > self.cluster.applied_membership_index() {
                    reply.partial = format!(
                        "{node} knows a newer cluster membership than this node has applied; members this node does not know were not asked"
                    );
                }
                // Two rings at once: trace bindings may be moving between
                // their homes under each.
                let epoch = self.cluster.ring_epoch();
                if reply.partial.is_empty() && reply.ring_epoch != epoch {
                    reply.partial = format!("{node} is on ring epoch {}, this node on {epoch}", reply.ring_epoch);
                }
                Ok(reply)
            }
            Ok(Err(status)) => Err(ClusterError::Answered { node, message: status.message().to_owned() }),
            Err(_) => Err(ClusterError::NoAnswer { node, after: self.cluster.rpc_timeout() }),
        }
    }

    /// Asks every member (on the ring or not): this node through `local`, the others with
    /// `query`, their answers read by `parse`.
    async fn ask_all<T>(
        &self,
        tenant: &TenantId,
        query: Query,
        local: impl std::future::Future<Output = Result<T, QueryError>>,
        parse: impl Fn(Option<Answer>, String) -> Result<T, ClusterError>,
    ) -> Vec<(NodeId, Result<T, ClusterError>)> {
        let me = self.cluster.id;
        let members = self.cluster.all_members();
        let others: Vec<NodeId> = members.iter().copied().filter(|n| *n != me).collect();
        let parse = &parse;
        let remote = futures::future::join_all(others.into_iter().map(|node| {
            let query = query.clone();
            async move { (node, self.ask(node, tenant, query).await.and_then(|r| parse(r.answer, r.partial))) }
        }));
        let (mine, mut answers) = futures::join!(local, remote);
        if members.contains(&me) {
            answers.push((me, mine.map_err(ClusterError::Local)));
        }
        answers
    }

    /// One page of the session as `node` holds it (this node: local state
    /// only), and the node it just handed the session's live data to, if
    /// it did. Each node pages its own records (see [`Self::owned_session`]).
    async fn session_on(&self, node: NodeId, tenant: &TenantId, id: &CorrelationId, page: Page) -> NodeAnswer {
        if node == self.cluster.id {
            let mut data = self.local.session_page(tenant, id, page).await;
            if let Some(why) = self.cluster.bindings_in_flight() {
                data = match data {
                    Ok(Some(mut d)) => {
                        d.data.partial.get_or_insert(why);
                        Ok(Some(d))
                    }
                    Ok(None) => Err(QueryError::Unavailable(why)),
                    other => other,
                };
            }
            return match self.local.moved_to(tenant, id).await {
                Ok(moved) => NodeAnswer { data, moved_to: moved.map(|(to, _)| to) },
                Err(e) => NodeAnswer { data: Err(e), moved_to: None },
            };
        }
        let query = SessionPageQuery { correlation_id: id.as_str().to_owned(), offset: page.offset, limit: page.limit };
        match self.ask(node, tenant, Query::SessionPage(query)).await {
            Ok(reply) => {
                let moved_to = (reply.moved_to != 0).then_some(NodeId(reply.moved_to));
                NodeAnswer { data: session_reply(reply, page), moved_to }
            }
            Err(e) => NodeAnswer { data: Err(QueryError::Unavailable(e.to_string())), moved_to: None },
        }
    }

    /// A page of a session answered by its owner (and the owner of the ID
    /// it resolved to, and — with the embedded store — every other member).
    ///
    /// Every node asked pages the records it holds with the same `page`
    /// and the answers are merged, the totals summed: following pages
    /// until no node has more visits each node's records once, and a page
    /// holds at most `page.limit` records of a kind per node that holds
    /// part of the session (usually one: its owner).
    pub async fn owned_session(&self, tenant: &TenantId, id: &CorrelationId, page: Page) -> Result<Option<PagedSession>, QueryError> {
        // A node that has not applied its own membership yet knows too few members:
        // its "not found" would be wrong.
        if !self.cluster.caught_up() {
            return Err(QueryError::Unavailable(format!(
                "node {} has not caught up with the cluster yet; ask another node",
                self.cluster.id
            )));
        }
        let owner = self.cluster.owner(tenant, id);
        let mut found = None;
        let mut silent = Vec::new();
        let mut moved = Vec::new();
        let answer = self.session_on(owner, tenant, id, page).await;
        moved.extend(answer.moved_to.map(|to| (owner, to)));
        silent.extend(merge_answer(&mut found, owner, answer.data));
        let mut asked = vec![owner];
        // An alias: the explicit session may live on another node.
        if let Some(resolved) = found.as_ref().map(|d| d.data.id.clone()).filter(|r| r != id) {
            let resolved_owner = self.cluster.owner(tenant, &resolved);
            if !asked.contains(&resolved_owner) {
                asked.push(resolved_owner);
                let answer = self.session_on(resolved_owner, tenant, &resolved, page).await;
                moved.extend(answer.moved_to.map(|to| (resolved_owner, to)));
                silent.extend(merge_answer(&mut found, resolved_owner, answer.data));
            }
        }
        let others: Vec<NodeId> = if self.shared_storage {
            // Shared storage: this node can read what a silent owner flushed.
            if silent.is_empty() || asked.contains(&self.cluster.id) {
                Vec::new()
            } else {
                vec![self.cluster.id]
            }
        } else {
            // Every member, including those off the ring: a node the failure detector
            // removed (a one-way partition, say) may still hold live sessions it could not
            // hand off, and it keeps the segments it flushed. Asking only ring members
            // answered "complete" without them.
            self.cluster.all_members().into_iter().filter(|n| !asked.contains(n)).collect()
        };
        let target = found.as_ref().map_or_else(|| id.clone(), |d| d.data.id.clone());
        let answers = futures::future::join_all(others.iter().map(|&n| self.session_on(n, tenant, &target, page))).await;
        for (node, answer) in others.into_iter().zip(answers) {
            moved.extend(answer.moved_to.map(|to| (node, to)));
            silent.extend(merge_answer(&mut found, node, answer.data));
        }
        // A node handed the session's live data on while it was being
        // asked, so its destination may have been asked before the data
        // landed. The hand-off completed before the note was made: asking
        // the destination again finds it. One hop; a second move makes the
        // answer partial. (Before, such answers were partial for up to the
        // RPC timeout after every hand-off.)
        moved.sort_by_key(|(_, to)| *to);
        moved.dedup_by_key(|(_, to)| *to);
        for (from, to) in moved {
            let again = self.session_on(to, tenant, &target, page).await;
            if let Some(next) = again.moved_to {
                silent.push(format!("{from} handed the session to {to}, which handed it on to {next} meanwhile"));
            }
            if let Some(why) = merge_answer(&mut found, to, again.data) {
                silent.push(format!("{from} handed the session to {to} moments ago, and {why}"));
            }
        }
        // Trace-derived sessions merged into this one, as the nodes that merged them
        // know: data stored under such an ID on a node that never learnt of the merge
        // (the trace's earlier home, before a ring change moved its binding) is found
        // only under that ID.
        let aliases: Vec<CorrelationId> = found.as_ref().map(|d| d.data.aliases.clone()).unwrap_or_default();
        if !aliases.is_empty() {
            let holders: Vec<NodeId> = if self.shared_storage { vec![self.cluster.id] } else { self.cluster.all_members() };
            let asks = aliases.iter().flat_map(|alias| holders.iter().map(move |&n| (n, alias)));
            let answers =
                futures::future::join_all(asks.map(|(n, alias)| async move { (n, alias, self.session_on(n, tenant, alias, page).await) }))
                    .await;
            // As above: a derived session handed on while it was being asked for is asked
            // for again where it went.
            let mut moved_aliases = Vec::new();
            for (node, alias, answer) in answers {
                moved_aliases.extend(answer.moved_to.map(|to| (node, to, alias)));
                silent.extend(merge_answer(&mut found, node, answer.data));
            }
            moved_aliases.sort_by_key(|(_, to, alias)| (*to, *alias));
            moved_aliases.dedup_by_key(|(_, to, alias)| (*to, *alias));
            for (from, to, alias) in moved_aliases {
                let again = self.session_on(to, tenant, alias, page).await;
                if let Some(next) = again.moved_to {
                    silent.push(format!("{from} handed {alias} to {to}, which handed it on to {next} meanwhile"));
                }
                if let Some(why) = merge_answer(&mut found, to, again.data) {
                    silent.push(format!("{from} handed {alias} to {to} moments ago, and {why}"));
                }
            }
        }
        // Only aliases were found, no data anywhere.
        let found = found.filter(|d| d.total != Counts::default());
        if silent.is_empty() {
            return Ok(found);
        }
        let mut found = found;
        let why = format!("{}; answered without them", silent.join("; "));
        match found.as_mut() {
            Some(paged) => {
                paged.data.partial = Some(why);
                Ok(found)
            }
            // Nothing found and a node that may hold it is silent: not
            // "unknown session" but "cannot tell".
            None => Err(QueryError::Unavailable(why)),
        }
    }
}

fn parse_trace_answer(answer: Option<Answer>) -> Option<CorrelationId> {
    match answer {
        Some(Answer::SessionOfTrace(id)) if !id.is_empty() => Some(CorrelationId::from_trusted(id.as_str())),
        _ => None,
    }
}

/// One node's answer to a session query.
struct NodeAnswer {
    data: Result<Option<PagedSession>, QueryError>,
    /// The node it handed the session's live data to moments ago.
    moved_to: Option<NodeId>,
}

fn session_reply(reply: ollystack_proto::cluster::QueryReply, page: Page) -> Result<Option<PagedSession>, QueryError> {
    match reply.answer {
        Some(Answer::Session(data)) if reply.found => {
            let mut data = paged_from_pb(data, page);
            if data.data.partial.is_none() && !reply.partial.is_empty() {
                data.data.partial = Some(reply.partial);
            }
            Ok(Some(data))
        }
        _ if !reply.partial.is_empty() => Err(QueryError::Unavailable(reply.partial)),
        _ => Ok(None),
    }
}

/// Adds one node's answer to what was found. Returns why the node could
/// not answer, if it could not.
fn merge_answer(found: &mut Option<PagedSession>, node: NodeId, answer: Result<Option<PagedSession>, QueryError>) -> Option<String> {
    match (found.as_mut(), answer) {
        (_, Ok(None)) => None,
        (Some(found), Ok(Some(PagedSession { data: more, total, .. }))) => {
            found.total.add(total);
            let data = &mut found.data;
            data.segments.extend(more.segments);
            for alias in more.aliases {
                if !data.aliases.contains(&alias) {
                    data.aliases.push(alias);
                }
            }
            if data.partial.is_none() {
                data.partial = more.partial;
            }
            None
        }
        (None, Ok(Some(more))) => {
            *found = Some(more);
            None
        }
        (_, Err(e)) => Some(format!("{node}, which may hold part of this session, could not be asked ({e})")),
    }
}

impl QueryBackend for ClusterBackend {
    async fn session_page(&self, tenant: &TenantId, id: &CorrelationId, page: Page) -> Result<Option<PagedSession>, QueryError> {
        self.owned_session(tenant, id, page).await
    }

    async fn session_of_trace(&self, tenant: &TenantId, trace_id: TraceId) -> Result<Option<CorrelationId>, QueryError> {
        let home = self.cluster.owner(tenant, &correlate::derive_from_trace(trace_id));
        let at_home = if home == self.cluster.id {
            self.local.session_of_trace(tenant, trace_id).await
        } else {
            match self.ask(home, tenant, Query::SessionOfTrace(trace_id.0.to_vec())).await {
                Ok(reply) => Ok(parse_trace_answer(reply.answer)),
                Err(e) => Err(QueryError::Unavailable(e.to_string())),
            }
        };
        if let Ok(Some(id)) = at_home {
            return Ok(Some(id));
        }
        // The trace's home binds it, but the home moves when the ring
        // changes (a join, a leave, a failure) and the binding stays where
        // it was made: ask every member before saying "unknown trace".
        let answers = self
            .ask_all(tenant, Query::SessionOfTrace(trace_id.0.to_vec()), self.local.session_of_trace(tenant, trace_id), |answer, _| {
                Ok(parse_trace_answer(answer))
            })
            .await;
        let mut silent = Vec::new();
        for (node, answer) in answers {
            match answer {
                Ok(Some(id)) => return Ok(Some(id)),
                Ok(None) => {}
                Err(e) => silent.push(format!("{node}: {e}")),
            }
        }
        match at_home {
            Err(e) => Err(e),
            Ok(_) if !silent.is_empty() => {
                Err(QueryError::Unavailable(format!("trace not found; not every node answered ({})", silent.join("; "))))
            }
            Ok(_) => Ok(None),
        }
    }

    /// Every member lists what it holds; rows are merged. The listing
    /// resumes where the node that got least far stopped (others may list
    /// some rows again then; none are skipped).
    async fn session_listing(&self, tenant: &TenantId, filter: &SessionFilter) -> Result<SessionListing, QueryError> {
        let json = serde_json::to_vec(filter).map_err(|e| QueryError::Storage(e.to_string()))?;
        let answers = self
            .ask_all(tenant, Query::RecentSessions(json), self.local.session_listing(tenant, filter), |answer, partial| match answer {
                Some(Answer::Json(bytes)) => {
                    serde_json::from_slice::<SessionListing>(&bytes).map_err(|e| ClusterError::BadReply(e.to_string()))
                }
                _ => Err(ClusterError::BadReply(partial)),
            })
            .await;
        let mut rows: HashMap<CorrelationId, SessionListItem> = HashMap::new();
        let mut resume: Option<u64> = None;
        for (node, answer) in answers {
            match answer {
                Ok(listing) => {
                    if let Some(before) = listing.resume_before_unix_ms {
                        resume = Some(resume.map_or(before, |r| r.max(before)));
                    }
                    for item in listing.sessions {
                        // A session live on its owner wins over a copy elsewhere.
                        let keep = rows.get(&item.correlation_id).is_none_or(|have| !have.live && item.live);
                        if keep {
                            rows.insert(item.correlation_id.clone(), item);
                        }
                    }
                }
                Err(e) => tracing::warn!(%node, error = %e, "a node did not answer a session listing; skipped"),
            }
        }
        let mut out: Vec<SessionListItem> = rows.into_values().collect();
        out.sort_by(|a, b| b.last_seen_unix_ms.cmp(&a.last_seen_unix_ms).then_with(|| a.correlation_id.cmp(&b.correlation_id)));
        out.truncate(filter.limit);
        Ok(SessionListing { sessions: out, resume_before_unix_ms: resume })
    }

    async fn exemplars(&self, tenant: &TenantId, filter: &ExemplarFilter) -> Result<Vec<ExemplarHit>, QueryError> {
        let json = serde_json::to_vec(filter).map_err(|e| QueryError::Storage(e.to_string()))?;
        let answers = self
            .ask_all(tenant, Query::Exemplars(json), self.local.exemplars(tenant, filter), |answer, partial| match answer {
                Some(Answer::Exemplars(hits)) => Ok(hits_from_pb(hits)),
                _ => Err(ClusterError::BadReply(partial)),
            })
            .await;
        let mut out = Vec::new();
        for (node, answer) in answers {
            match answer {
                Ok(hits) => out.extend(hits),
                Err(e) => tracing::warn!(%node, error = %e, "a node did not answer an exemplar query; skipped"),
            }
        }
        out.sort_by(|a, b| a.exemplar.time_unix_nano.cmp(&b.exemplar.time_unix_nano).then_with(|| a.correlation_id.cmp(&b.correlation_id)));
        out.dedup_by(|a, b| a.correlation_id == b.correlation_id && a.exemplar == b.exemplar);
        out.truncate(filter.limit);
        Ok(out)
    }

    /// Every ring member aggregates the sessions it holds; the answers are
    /// merged. A member that does not answer makes the result partial.
    async fn window_aggregate(&self, tenant: &TenantId, query: &WindowQuery) -> Result<Collected, QueryError> {
        let json = serde_json::to_vec(query).map_err(|e| QueryError::Storage(e.to_string()))?;
        let answers = self
            .ask_all(tenant, Query::Window(json), collect_window(&*self.local, tenant, query), |answer, partial| match answer {
                Some(Answer::Json(bytes)) => serde_json::from_slice::<Collected>(&bytes).map_err(|e| ClusterError::BadReply(e.to_string())),
                _ => Err(ClusterError::BadReply(partial)),
            })
            .await;
        let mut merged: Option<Collected> = None;
        let mut silent = Vec::new();
        for (node, answer) in answers {
            match answer {
                Ok(c) => match merged.as_mut() {
                    Some(m) => m.merge(&c),
                    None => merged = Some(c),
                },
                Err(e) => silent.push(format!("{node} could not be asked ({e})")),
            }
        }
        let mut merged = merged.ok_or_else(|| QueryError::Unavailable(silent.join("; ")))?;
        if !silent.is_empty() {
            let why = format!("{}; its sessions are not in the analysis", silent.join("; "));
            merged.partial = Some(match merged.partial.take() {
                Some(p) => format!("{p}; {why}"),
                None => why,
            });
        }
        Ok(merged)
    }

    fn render_metrics(&self) -> String {
        self.local.render_metrics()
    }

    fn is_ready(&self) -> bool {
        self.local.is_ready()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{Segment, SessionData};
    use ollystack_proto::store::StoredSpan;

    fn paged(spans: usize, total: u64) -> PagedSession {
        let segment = Segment { spans: vec![StoredSpan::default(); spans], ..Default::default() };
        let data = SessionData { id: CorrelationId::from_trusted("s"), segments: vec![segment], partial: None, aliases: Vec::new() };
        PagedSession { data, page: Page::first(2), total: Counts { spans: total, logs: 0, exemplars: 0 } }
    }

    #[test]
    fn node_pages_merge_and_their_totals_add_up() {
        let mut found = None;
        assert_eq!(merge_answer(&mut found, NodeId(1), Ok(Some(paged(2, 5)))), None);
        assert_eq!(merge_answer(&mut found, NodeId(2), Ok(Some(paged(1, 1)))), None);
        assert_eq!(merge_answer(&mut found, NodeId(3), Ok(None)), None);
        let found = found.expect("found");
        assert_eq!((found.total.spans, found.data.segments.len()), (6, 2));
        // Node 1 holds more than this page: the merged page says so.
        assert_eq!(crate::query::next_offset(found.page, found.total), Some(2));
    }
}
