//! Outbound adapter, PostgreSQL: hand-written statements that PostgreSQL prepares once per
//! connection.
//!
//! `diesel::sql_query` marks its text unsafe to cache, so diesel prepares (parses, analyses and
//! plans) it again on every execution; for the one-statement writes of triggers and decisions
//! that cost more server CPU than running them. A [`Statement`] has a type of its own, so the
//! connection's statement cache keys it by type and reuses the prepared statement.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;
use diesel::sql_types::Untyped;

/// A statement with fixed text whose `$n` placeholders are filled by [`StaticStatement::bind`].
pub trait StaticStatement: Send + Sync + 'static {
    /// The text; `$1`, `$2`, ... may each appear any number of times.
    const SQL: &'static str;

    /// Pushes the value of placeholder `n` (1-based).
    fn bind<'b>(&'b self, n: usize, out: AstPass<'_, 'b, Pg>) -> QueryResult<()>;
}

/// Runs a [`StaticStatement`]; load rows with `QueryableByName` types.
pub struct Statement<S>(pub S);

impl<S: StaticStatement> QueryId for Statement<S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<S: StaticStatement> QueryFragment<Pg> for Statement<S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest = S::SQL;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .bytes()
                .take_while(u8::is_ascii_digit)
                .count();
            if digits == 0 {
                out.push_sql(&rest[..=at]);
                rest = &rest[at + 1..];
                continue;
            }
            out.push_sql(&rest[..at]);
            let n = rest[at + 1..at + 1 + digits]
                .parse()
                .map_err(|_| diesel::result::Error::QueryBuilderError("bad placeholder".into()))?;
            self.0.bind(n, out.reborrow())?;
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl<S> Query for Statement<S> {
    type SqlType = Untyped;
}

/// The error for a placeholder the statement does not have.
pub fn no_such_placeholder(n: usize) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(format!("no bind for placeholder ${n}").into())
}

/// Test support: the generic plan of `sql` (prepared as `name` with the parameter `types`,
/// under `force_generic_plan`: the plan a pooled session's cached statement may settle on), as
/// `EXPLAIN EXECUTE` shows it for the arguments `args`, one line per element.
#[cfg(any(test, feature = "test-support"))]
pub(super) async fn generic_plan(
    store: &super::PgStore,
    name: &str,
    types: &str,
    sql: &str,
    args: &str,
) -> Result<Vec<String>, crate::domain::WorkflowError> {
    use diesel::QueryableByName;
    use diesel::sql_types::Text;
    use diesel_async::{AsyncConnection, RunQueryDsl, SimpleAsyncConnection};

    use super::errors::TxError;

    #[derive(QueryableByName)]
    struct PlanLine {
        #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
        line: String,
    }
    store
        .with_conn(async |conn| {
            conn.transaction::<_, TxError, _>(async |conn| {
                conn.batch_execute(&format!(
                    "SET LOCAL plan_cache_mode = force_generic_plan;\n\
                     PREPARE {name} ({types}) AS\n{sql}"
                ))
                .await?;
                let plan = diesel::sql_query(format!("EXPLAIN EXECUTE {name} ({args})"))
                    .load::<PlanLine>(conn)
                    .await;
                conn.batch_execute(&format!("DEALLOCATE {name}")).await?;
                Ok(plan?.into_iter().map(|p| p.line).collect())
            })
            .await
        })
        .await
}
