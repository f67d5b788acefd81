//! `latchkey`: parse the configuration, set up logs, build and serve.
#![recursion_limit = "256"]
use clap::Parser;
use latchkey::{config::Config, startup};
use tracing_subscriber::EnvFilter;

/// glibc raises its mmap threshold after a large block is freed (up to 32 MiB), and from then on keeps such blocks
/// in per-thread arenas that it trims only past twice that: measured, the server's anonymous memory went from 27
/// to 221 MiB during 8 concurrent sign-ins while its live heap never passed 40 MiB (heaptrack). A fixed threshold
/// sends every block over 1 MiB (argon2's 19 MiB among them) straight back to the kernel when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn bound_allocator_memory() {
    // SAFETY: mallopt only changes allocator parameters; called once, before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn bound_allocator_memory() {}

fn main() -> std::process::ExitCode {
    bound_allocator_memory();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(serve()),
        Err(e) => {
            eprintln!("latchkey: cannot start the async runtime: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve() -> std::process::ExitCode {
    let config = Config::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    if config.log_format == "json" {
        tracing_subscriber::fmt().with_env_filter(filter).json().init();
    } else {
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).init();
    }
    if let Some(command) = config.command.clone() {
        return latchkey::cli::run(&config, command).await;
    }
    let result = match startup::build(config).await {
        Ok(app) => startup::run(app).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
