//! The command-line side of the binary: `latchkey operators add|remove|list` against the configured database.
use crate::config::{Command, Config, KeyAction, OperatorAction};
use app::service::operators;
use std::process::ExitCode;

pub async fn run(config: &Config, command: Command) -> ExitCode {
    let db = match app::repo::connect(&config.database_url).await {
        Ok(db) => db,
        Err(e) => {
            eprintln!("latchkey: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match command {
        Command::Operators { action: OperatorAction::Add { email } } => operators::add(&db, &email).await,
        Command::Operators { action: OperatorAction::Remove { email } } => operators::remove(&db, &email).await,
        Command::Operators { action: OperatorAction::List } => operators::list(&db).await,
        Command::Keys { action: KeyAction::Rotate } => rotate_key(config, &db).await,
    };
    db.close().await;
    match result {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("latchkey: {}", e.public_message());
            ExitCode::FAILURE
        }
    }
}

/// `latchkey keys rotate`: needs the server's key file (the private key is sealed with it); never creates one.
async fn rotate_key(config: &Config, db: &app::state::Db) -> app::service::ServiceResult<String> {
    if !config.key_file.exists() {
        return Err(app::service::ServiceError::validation(
            "keyFile",
            format!("{} does not exist: pass the server's --key-file", config.key_file.display()),
        ));
    }
    let (secrets, _) = app::service::crypto::SecretBox::load_or_create(&config.key_file).map_err(|e| app::service::ServiceError::internal("key file", e))?;
    let key = app::service::jwt::rotate(db, &secrets).await?;
    Ok(format!("Session JWTs are now signed with key {}; the previous key stays in the JWKS for {} seconds.", key.kid, app::service::jwt::JWT_TTL_SECS))
}
