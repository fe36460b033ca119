//! Driving adapter, pages: users shown by name. A page collects the ids it mentions and asks the
//! directory for each once, through the driving port.

use std::collections::{BTreeSet, HashMap};

use futures_util::future::join_all;

use crate::domain::WorkflowError;
use crate::domain::model::UserId;
use crate::domain::ports::WorkflowUseCases;

/// The names of the users a page mentions.
#[derive(Debug, Clone, Default)]
pub struct Names(HashMap<UserId, String>);

impl Names {
    /// Looks up every user of `ids` (each once). A user the directory does not know is shown by
    /// id; a store failure is an error.
    pub async fn load<S: WorkflowUseCases>(
        service: &S,
        ids: impl IntoIterator<Item = UserId>,
    ) -> Result<Self, WorkflowError> {
        let ids: BTreeSet<UserId> = ids.into_iter().collect();
        let found = join_all(ids.iter().map(|id| service.user(*id))).await;
        let mut names = HashMap::new();
        for (id, user) in ids.into_iter().zip(found) {
            match user {
                Ok(user) => {
                    names.insert(id, user.name);
                }
                Err(WorkflowError::NotFound { .. }) => {}
                Err(other) => return Err(other),
            }
        }
        Ok(Self(names))
    }

    /// "Sales Manager", or "user 7" for a user the directory does not know.
    pub fn of(&self, id: UserId) -> String {
        self.0
            .get(&id)
            .cloned()
            .unwrap_or_else(|| format!("user {id}"))
    }
}
