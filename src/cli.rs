//! The command-line side of the binary: `latchkey operators add|remove|list` against the configured database.
use crate::config::{Command, Config, OperatorAction};
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
