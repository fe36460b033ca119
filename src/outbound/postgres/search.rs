//! Outbound adapter, PostgreSQL: finding instances by entity, event, status and initiator,
//! newest first, a page at a time.
//!
//! The page is one boxed diesel query with only the criteria given; each criterion has an index
//! that ends in `id DESC` (migration `instance_search`), so "these instances, newest first,
//! below this id" is one index range scan read in order, stopped at the limit. The page's steps
//! are a second query for all its instances at once. Both run in one read-only snapshot, so a
//! decision committing meanwhile is seen entirely or not at all.
//!
//! These statements are planned for their values (`force_custom_plan` for the transaction), not
//! generically as the adapter's other statements are: the right index depends on the value (a
//! status that 1 instance in 1,000 has is read from its index, one that most have is read along
//! the primary key), and a generic plan can't know which it got.

use std::collections::HashMap;

use diesel::pg::Pg;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use super::errors::TxError;
use super::rows::{InstanceRow, StepRow};
use super::schema::{workflow_instance_steps, workflow_instances};
use super::{Conn, PgStore};
use crate::domain::WorkflowError;
use crate::domain::model::{Instance, InstanceFilter, InstanceId};

/// Plans this transaction's statements for their values (see the module's documentation).
const CUSTOM_PLANS: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

type PageQuery<'a> = workflow_instances::BoxedQuery<'a, Pg>;

/// The newest instances matching `filter` with an id below `after`, at most `limit`, each with
/// its steps and no audit.
pub(super) async fn search_instances(
    store: &PgStore,
    filter: InstanceFilter,
    limit: u32,
    after: Option<InstanceId>,
) -> Result<Vec<Instance>, WorkflowError> {
    store
        .with_conn(async |conn| {
            conn.build_transaction()
                .read_only()
                .repeatable_read()
                .run::<_, TxError, _>(async |conn| read_page(conn, &filter, limit, after).await)
                .await
        })
        .await
}

/// The page query: the criteria given, below `after`, newest first, at most `limit` rows.
fn page_query(filter: &InstanceFilter, limit: u32, after: Option<InstanceId>) -> PageQuery<'_> {
    use workflow_instances::dsl as i;
    let mut query = i::workflow_instances
        .order(i::id.desc())
        .limit(i64::from(limit))
        .into_boxed();
    if let Some(entity) = &filter.entity {
        query = query.filter(i::entity_type.eq(entity.entity_type.as_str()));
        if let Some(entity_id) = entity.entity_id {
            query = query.filter(i::entity_id.eq(entity_id.get()));
        }
    }
    if let Some(event) = &filter.event {
        query = query.filter(i::event.eq(event.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(i::status.eq(status.as_str()));
    }
    if let Some(user) = filter.initiated_by {
        query = query.filter(i::initiated_by.eq(user.get()));
    }
    if let Some(after) = after {
        query = query.filter(i::id.lt(after.get()));
    }
    query
}

/// The page, then the steps of all its instances in one query.
async fn read_page(
    conn: &mut Conn,
    filter: &InstanceFilter,
    limit: u32,
    after: Option<InstanceId>,
) -> Result<Vec<Instance>, TxError> {
    let shared: &AsyncPgConnection = conn;
    // Sent together (pipelined); the setting is in force when the page is planned.
    let custom_plans = diesel::sql_query(CUSTOM_PLANS).execute(&mut &*shared);
    let page = page_query(filter, limit, after)
        .select(InstanceRow::as_select())
        .load::<InstanceRow>(&mut &*shared);
    let (_, rows) = futures_util::future::try_join(custom_plans, page).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let steps: Vec<(i64, StepRow)> = workflow_instance_steps::table
        .filter(workflow_instance_steps::instance_id.eq_any(&ids))
        .order((
            workflow_instance_steps::instance_id,
            workflow_instance_steps::step_order,
        ))
        .select((workflow_instance_steps::instance_id, StepRow::as_select()))
        .load(conn)
        .await?;
    let mut steps_of: HashMap<i64, Vec<StepRow>> = HashMap::with_capacity(rows.len());
    for (instance, step) in steps {
        steps_of.entry(instance).or_default().push(step);
    }
    let instances = rows
        .into_iter()
        .map(|row| {
            let steps = steps_of.remove(&row.id).unwrap_or_default();
            row.into_domain(steps, Vec::new())
        })
        .collect::<Result<_, _>>()?;
    Ok(instances)
}

/// Test support: the plan PostgreSQL chooses for a page (`EXPLAIN`), planned as a search plans
/// it (custom plans in a read-only transaction on a pooled session), one line per element.
#[cfg(any(test, feature = "test-support"))]
impl PgStore {
    pub async fn explain_search(
        &self,
        filter: &InstanceFilter,
        limit: u32,
        after: Option<InstanceId>,
    ) -> Result<Vec<String>, WorkflowError> {
        use diesel_async::SimpleAsyncConnection;
        self.with_conn(async |conn| {
            conn.build_transaction()
                .read_only()
                .repeatable_read()
                .run::<_, TxError, _>(async |conn| {
                    conn.batch_execute(CUSTOM_PLANS).await?;
                    let query = page_query(filter, limit, after).select(InstanceRow::as_select());
                    Ok(explain::Explain(query).load::<String>(conn).await?)
                })
                .await
        })
        .await
    }
}

#[cfg(any(test, feature = "test-support"))]
mod explain {
    //! `EXPLAIN` in front of a diesel query, its binds kept, so that the plan shown is the one
    //! chosen for these values.

    use diesel::QueryResult;
    use diesel::pg::Pg;
    use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
    use diesel::sql_types::Text;

    pub struct Explain<Q>(pub Q);

    impl<Q> QueryId for Explain<Q> {
        type QueryId = ();
        const HAS_STATIC_QUERY_ID: bool = false;
    }

    impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Explain<Q> {
        fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
            out.push_sql("EXPLAIN ");
            self.0.walk_ast(out.reborrow())
        }
    }

    impl<Q> Query for Explain<Q> {
        type SqlType = Text;
    }
}
