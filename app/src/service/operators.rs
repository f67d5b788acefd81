//! Operators: the team that runs this Latchkey instance, distinct from org owners. The role is granted only from
//! the command line of the same binary (`latchkey operators add EMAIL`), never by sign-up order, and audited.
use super::audit::{self, Event, Outcome};
use super::domain::Email;
use super::error::{ServiceError, ServiceResult};
use super::{now_ms, rfc3339, Principal, RequestMeta};
use crate::repo;
use crate::state::Db;

/// Lets only operators through (a key pinned to one org never acts as an operator).
pub async fn require(db: &Db, p: &Principal) -> ServiceResult<()> {
    if p.pinned_org().is_none() && repo::applications::is_operator(db, &p.user_id).await? {
        return Ok(());
    }
    Err(ServiceError::Forbidden(
        "This needs an operator of this Latchkey instance; operators are granted on the server with `latchkey operators add EMAIL`.".into(),
    ))
}

fn cli_meta() -> RequestMeta {
    RequestMeta { ip: None, user_agent: Some("latchkey operators (command line)".into()) }
}

async fn user_of(db: &Db, email: &str) -> ServiceResult<repo::users::UserRow> {
    let email = Email::parse(email)?;
    repo::users::by_email(db, email.as_str())
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("No account with the email {}: the person signs up (or in with SSO) first.", email.as_str())))
}

/// `latchkey operators add EMAIL`: a message for the terminal.
pub async fn add(db: &Db, email: &str) -> ServiceResult<String> {
    let user = user_of(db, email).await?;
    let mut tx = repo::begin(db).await?;
    let added = repo::applications::add_operator(&mut *tx, &user.id, now_ms()).await?;
    if added {
        audit::record_anonymous(&mut *tx, Some(&user.id), "command line", &cli_meta(), Event {
            org_id: None,
            action: "operator.add",
            target: Some(&user.id),
            outcome: Outcome::Success,
            detail: Some(format!("email={}", user.email)),
        })
        .await?;
    }
    tx.commit().await?;
    Ok(if added { format!("{} is now an operator.", user.email) } else { format!("{} was already an operator.", user.email) })
}

/// `latchkey operators remove EMAIL`.
pub async fn remove(db: &Db, email: &str) -> ServiceResult<String> {
    let user = user_of(db, email).await?;
    let mut tx = repo::begin(db).await?;
    let removed = repo::applications::remove_operator(&mut *tx, &user.id).await?;
    if removed {
        audit::record_anonymous(&mut *tx, Some(&user.id), "command line", &cli_meta(), Event {
            org_id: None,
            action: "operator.remove",
            target: Some(&user.id),
            outcome: Outcome::Success,
            detail: Some(format!("email={}", user.email)),
        })
        .await?;
    }
    tx.commit().await?;
    Ok(if removed { format!("{} is no longer an operator.", user.email) } else { format!("{} was not an operator.", user.email) })
}

/// `latchkey operators list`: one line per operator.
pub async fn list(db: &Db) -> ServiceResult<String> {
    let rows = repo::applications::operators(db).await?;
    if rows.is_empty() {
        return Ok("No operators yet. Grant one with: latchkey operators add EMAIL".into());
    }
    Ok(rows.into_iter().map(|(email, name, at)| format!("{email}\t{name}\tsince {}", rfc3339(at))).collect::<Vec<_>>().join("\n"))
}
